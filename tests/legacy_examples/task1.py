"""A StringTask that pushes nothing, uses a value pushed to every engine, and pulls three names.

Modelled on the 0.10 example ``docs/examples/kernel/task1.py``.
"""
from IPython.kernel import client

mec = client.MultiEngineClient()
tc = client.TaskClient()

mec.push(dict(d=30))

cmd = """\
a = 5
b = 10*d
c = a*b*d
"""

t = client.StringTask(cmd, clear_after=True, pull=['a', 'b', 'c'])
tid = tc.run(t)
tr = tc.get_task_result(tid, block=True)
tr.raise_exception()
print "a, b: ", tr.ns.a, tr.ns.b
print "c: ", tr['c']
