"""Three ways to map over the engines of a MultiEngineClient (IPython 0.10 style).

Modelled on the 0.10 example ``docs/examples/kernel/multienginemap.py``: a plain map, a
non-blocking mapper that hands back a PendingResult, and a parallel function.
Run: ``ipcluster local -n 4`` in one terminal, ``kernelpar-legacy multienginemap.py`` here.
"""
from IPython.kernel import client

mec = client.MultiEngineClient()

double = lambda x: 2*x

result = mec.map(double, range(10))
print "Simple, default map: ", result

later = mec.mapper(block=False)
pr = later.map(double, range(10))
print "Submitted map, got PendingResult: ", pr
result = pr.r
print "Using a mapper: ", result

@mec.parallel()
def twice(x): return 2*x

result = twice(range(10))
print "Using a parallel function: ", result
