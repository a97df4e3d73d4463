"""The Celery side of `go run ./bench tasks -systems celery`.

The benchmark writes this file to a temporary directory and runs it twice,
with BENCH_REDIS set to the URL of the Redis it started:

  python3 -m celery -A benchtasks worker ...   the worker: the tasks below
  python3 benchtasks.py                         the producer, driven over
                                                stdin and stdout (see produce)

Every finished task runs FINISH (in task_postrun, after its result, if any,
has been stored): it counts the task in bench:done and, when the count
reaches bench:target, pushes the time (time.time_ns) onto bench:finished,
where the benchmark waits with BLPOP. The pickup task pushes the time it
started onto bench:started.
"""

import os
import sys
import time

import redis
from celery import Celery
from celery.signals import task_postrun, worker_ready

URL = os.environ["BENCH_REDIS"]
QUEUE = "bench"

app = Celery("benchtasks", broker=URL, backend=URL)
app.conf.task_default_queue = QUEUE

FINISH = """
local n = redis.call('INCR', KEYS[1])
if n == tonumber(redis.call('GET', KEYS[2])) then
  redis.call('RPUSH', KEYS[3], ARGV[1])
end
return n
"""

_conn = None
_finish = None


def conn():
    """This process's own connection (a pool worker must not share its parent's)."""
    global _conn, _finish
    if _conn is None or _conn.pid != os.getpid():
        _conn = redis.Redis.from_url(URL)
        _conn.pid = os.getpid()
        _finish = _conn.register_script(FINISH)
    return _conn


@app.task(name="bench.noop", ignore_result=True)
def noop(i):
    pass


@app.task(name="bench.noop_result", ignore_result=False)
def noop_result(i):
    return "ok"


@app.task(name="bench.pickup", ignore_result=True)
def pickup(i):
    t = time.time_ns()
    conn().rpush("bench:started", t)


@task_postrun.connect
def finished(**_):
    conn()
    _finish(keys=["bench:done", "bench:target", "bench:finished"], args=[time.time_ns()])


@worker_ready.connect
def ready(**_):
    redis.Redis.from_url(URL).rpush("bench:ready", 1)


def produce():
    """Reads commands on stdin, one per line, answering each on stdout:

    run N TASK  sends N tasks named TASK (args [i]); answers "sent"
    pickup I    sends one bench.pickup; answers the time.time_ns() taken
                just before sending it
    """
    # An app without a result backend: send_task does not subscribe to
    # each task's result, as a producer with a Redis backend does.
    prod = Celery("benchproducer", broker=URL)
    with prod.connection_for_write() as c:
        c.ensure_connection(max_retries=3)
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "run":
            for i in range(int(cmd[1])):
                prod.send_task(cmd[2], args=[i], queue=QUEUE)
            print("sent", flush=True)
        elif cmd[0] == "pickup":
            t = time.time_ns()
            prod.send_task("bench.pickup", args=[int(cmd[1])], queue=QUEUE)
            print(t, flush=True)
        else:
            sys.exit("unknown command %r" % line)


if __name__ == "__main__":
    produce()
