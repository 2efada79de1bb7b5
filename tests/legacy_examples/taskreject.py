"""Tasks that refuse to run where a condition does not hold, with ``TaskRejectError``.

Modelled on the 0.10 example ``docs/examples/kernel/taskreject.py``.  There, the user typed
``mec.execute('run=True', targets=[0,1])`` by hand while the tasks kept being rejected; a
script has no one typing, so it allows engines 0 and 1 right away: the tasks that land on
engines 2 and 3 are rejected there and retried until they run on 0 or 1.
"""
from IPython.kernel import client
from IPython.kernel import TaskRejectError

mec = client.MultiEngineClient()
tc = client.TaskClient()

mec.execute('from IPython.kernel import TaskRejectError')
mec.execute('run = False')
mec.execute('run = True', targets=[0, 1])

def map_task():
    if not run:
        raise TaskRejectError('task dependency not met')
    return id

task_ids = []
for i in range(10):
    task = client.MapTask(map_task, retries=20)
    task_ids.append(tc.run(task, block=False))

tc.barrier(task_ids)
engines = [tc.get_task_result(tid) for tid in task_ids]
print "Tasks:", len(task_ids)
print "Ran on engines:", sorted(set(engines))
