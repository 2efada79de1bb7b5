"""Level spacings of random symmetric (GOE) matrices: the engine half of ``rmt.ipy``.

Modelled on the 0.10 example ``docs/examples/kernel/rmtkernel.py``.  Python 2 code: it
counts on ``xrange`` and on ``N/2`` being an integer index (classic division).
"""
import numpy


def GOE(N):
    """A random N x N matrix of the Gaussian Orthogonal Ensemble."""
    m = numpy.random.standard_normal((N, N))
    return (m + m.transpose())/2


def centerEigenvalueDiff(mat):
    """The gap between the two eigenvalues in the middle of the spectrum."""
    N = len(mat)
    evals = numpy.sort(numpy.linalg.eigvals(mat).real)
    return evals[N/2] - evals[N/2 - 1]


def ensembleDiffs(num, N):
    """Center gaps of ``num`` matrices of size ``N``."""
    diffs = numpy.empty(num)
    for i in xrange(num):
        diffs[i] = centerEigenvalueDiff(GOE(N))
    return diffs


def normalizeDiffs(diffs):
    """Gaps in units of their mean."""
    return diffs/diffs.mean()
