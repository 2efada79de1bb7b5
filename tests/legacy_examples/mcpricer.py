"""A Monte Carlo pricer for European and Asian options (Python 2 style, IPython 0.10 era).

Modelled on the 0.10 example ``docs/examples/kernel/mcpricer.py``: the driver runs this
file on every engine (``rc.run('mcpricer.py')``) and imports it itself.
"""
import numpy as N
from math import exp, sqrt


class MCOptionPricer(object):
    def __init__(self, S=100.0, K=100.0, sigma=0.25, r=0.05, days=260, paths=10000):
        self.S = S
        self.K = K
        self.sigma = sigma
        self.r = r
        self.days = days
        self.paths = paths
        self.dt = 1.0/days
        self.t = N.arange(days)

    def run(self):
        """Simulate the paths and set the four prices."""
        step = exp((self.r - 0.5*self.sigma**2)*self.dt)
        noise = N.random.standard_normal((self.paths, self.days))
        growth = step*N.exp(self.sigma*sqrt(self.dt)*noise)
        prices = self.S*growth.cumprod(axis=1)
        final = prices[:, -1]
        average = prices.mean(axis=1)
        discount = exp(-self.r*self.days*self.dt)
        self.vanilla_call = discount*N.maximum(final - self.K, 0.0).mean()
        self.vanilla_put = discount*N.maximum(self.K - final, 0.0).mean()
        self.asian_call = discount*N.maximum(average - self.K, 0.0).mean()
        self.asian_put = discount*N.maximum(self.K - average, 0.0).mean()


if __name__ == '__main__':
    op = MCOptionPricer(paths=1000)
    op.run()
    print "vanilla call/put:", op.vanilla_call, op.vanilla_put
    print "asian call/put:", op.asian_call, op.asian_put
