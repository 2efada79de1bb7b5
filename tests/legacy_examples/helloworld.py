"""Two StringTasks that each sleep and set a word; their results make the greeting.

Modelled on the 0.10 example ``docs/examples/kernel/helloworld.py`` (one second of sleep
instead of three).
"""
from IPython.kernel import client

mec = client.MultiEngineClient()
tc = client.TaskClient()

mec.execute('import time')
hello_task = client.StringTask('time.sleep(1); word = "Hello,"', pull=('word',))
world_task = client.StringTask('time.sleep(1); word = "World!"', pull=('word',))
hello_id = tc.run(hello_task)
world_id = tc.run(world_task)
print "Submitted tasks:", hello_id, world_id
hello = tc.get_task_result(hello_id, block=True).ns.word
world = tc.get_task_result(world_id, block=True).ns.word
print hello, world
