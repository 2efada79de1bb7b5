"""Load-balanced maps with a TaskClient (IPython 0.10 style).

Modelled on the 0.10 example ``docs/examples/kernel/taskmap.py``: ``tc.map``, a
non-blocking mapper that returns task ids, and a parallel function.
"""
from IPython.kernel import client

tc = client.TaskClient()

result = tc.map(lambda x: 2*x, range(10))
print "Simple, default map: ", result

mapper = tc.mapper(block=False, clear_after=True, clear_before=True)
ids = mapper.map(lambda x: 2*x, range(10))
print "Submitted tasks, got ids: ", ids
tc.barrier(ids)
result = [tc.get_task_result(i) for i in ids]
print "Using a mapper: ", result

@tc.parallel()
def twice(x): return 2*x

result = twice(range(10))
print "Using a parallel function: ", result
