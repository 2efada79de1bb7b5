"""Price options for a grid of strikes and volatilities with load-balanced StringTasks.

Modelled on the 0.10 example ``docs/examples/kernel/mcdriver.py`` (fewer paths, so that
it runs in seconds).
"""
from IPython.kernel import client
import numpy as N
from mcpricer import MCOptionPricer


tc = client.TaskClient()
rc = client.MultiEngineClient()

# the pricer's code on every engine
rc.run('mcpricer.py')

# what all tasks share: stock price, interest rate, days and number of paths
rc.push(dict(S=100.0, r=0.05, days=260, paths=2000))

task_string = """\
op = MCOptionPricer(S,K,sigma,r,days,paths)
op.run()
vp, ap, vc, ac = op.vanilla_put, op.asian_put, op.vanilla_call, op.asian_call
"""

K_vals = N.linspace(90.0, 100.0, 5)
sigma_vals = N.linspace(0.0, 0.2, 5)

taskids = []
for K in K_vals:
    for sigma in sigma_vals:
        t = client.StringTask(task_string,
            push=dict(sigma=sigma, K=K),
            pull=('vp', 'ap', 'vc', 'ac', 'sigma', 'K'))
        taskids.append(tc.run(t))

print "Submitted tasks: ", taskids

tc.barrier(taskids)
results = [tc.get_task_result(tid) for tid in taskids]

n = K_vals.shape[0]*sigma_vals.shape[0]
vc = N.empty(n, dtype='float64')
vp = N.empty(n, dtype='float64')
ac = N.empty(n, dtype='float64')
ap = N.empty(n, dtype='float64')
for i, tr in enumerate(results):
    ns = tr.ns
    vc[i] = ns.vc
    vp[i] = ns.vp
    ac[i] = ns.ac
    ap[i] = ns.ap
vc.shape = (K_vals.shape[0], sigma_vals.shape[0])
vp.shape = (K_vals.shape[0], sigma_vals.shape[0])
ac.shape = (K_vals.shape[0], sigma_vals.shape[0])
ap.shape = (K_vals.shape[0], sigma_vals.shape[0])

print "Vanilla call prices:", vc.shape
print vc
print "Calls fall with the strike:", bool((N.diff(vc, axis=0) <= 1e-9).all())
print "Asian calls are cheaper:", bool((ac <= vc + 1e-9).all())
