"""``python -m kernelpar.demo``: start a local cluster and do real work on it.

Starts a controller and ``-n`` engines (default 2), then uses the views the way a
tutorial would: a parallel map, a function applied on every engine, a numpy array
scattered, worked on where it lives and gathered back, and a Monte Carlo estimate of
pi.  Prints each result with its timing, and stops everything it started.
"""

import argparse
import os
import time

import numpy as np

import kernelpar as ipp


def count_primes(bounds):
    lo, hi = bounds
    count = 0
    for n in range(max(lo, 2), hi):
        if all(n % d for d in range(2, int(n**0.5) + 1)):
            count += 1
    return count


def estimate_pi(samples):
    import numpy as np

    rng = np.random.default_rng()
    xy = rng.random((samples, 2))
    return 4.0 * np.count_nonzero((xy**2).sum(axis=1) <= 1.0) / samples


def timed(label, fn):
    t0 = time.perf_counter()
    value = fn()
    print(f"  {label:<52} {time.perf_counter() - t0:8.3f} s")
    return value


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m kernelpar.demo", description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2, help="number of engines (default 2)")
    args = ap.parse_args(argv)

    print(f"kernelpar {ipp.__version__}: starting a local cluster with {args.n} engines")
    t0 = time.perf_counter()
    with ipp.Cluster(n=args.n) as rc:
        print(f"  cluster up, engines {rc.ids}, in {time.perf_counter() - t0:.2f} s")
        dview = rc[:]
        pids = timed("each engine reports its process id", lambda: dview.apply_sync(os.getpid))
        print(f"    engine pids: {pids}")

        chunks = [(i, i + 25_000) for i in range(0, 200_000, 25_000)]
        primes = timed("count primes below 200,000 (map over 8 chunks)", lambda: dview.map_sync(count_primes, chunks))
        print(f"    primes per chunk: {primes}, total {sum(primes)}")

        data = np.arange(4_000_000, dtype=np.float64)
        timed("scatter 4M floats across the engines", lambda: dview.scatter("part", data, block=True))
        # an engine builds its IPython shell on its first execute (apply-only work never needs it)
        timed("first execute on each engine: it starts IPython", lambda: dview.execute("pass", block=True))
        timed("square them where they live", lambda: dview.execute("part = part ** 2", block=True))
        squares = timed("gather the result", lambda: dview.gather("part", block=True))
        print(f"    sum of squares: {squares.sum():.6e} (numpy locally: {(data ** 2).sum():.6e})")

        estimates = timed("Monte Carlo pi, 2M samples per engine", lambda: dview.apply_sync(estimate_pi, 2_000_000))
        print(f"    pi ~ {np.mean(estimates):.5f} (from {len(estimates)} engines)")

        latency = []
        for _ in range(200):
            t = time.perf_counter()
            rc[0].apply_sync(int)
            latency.append(time.perf_counter() - t)
        print(f"  round trip to one engine: median {np.median(latency) * 1e3:.3f} ms over 200 calls")
    print(f"stopped the cluster; total {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
