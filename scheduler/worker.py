"""The RQ worker class for scheduling passes."""

import gc

from rq.worker import SimpleWorker


class SchedulerWorker(SimpleWorker):
    """rq's SimpleWorker (passes run in the worker process: no fork and no new database
    connection per job) with its start-up heap frozen out of the garbage collector.

    Django's start-up leaves a large heap that every full collection rescans; frozen, a
    pass's tail latency is its own work (docs/benchmarks.md, `--freeze-gc`).
    """

    def work(self, *args, **kwargs):
        gc.freeze()
        return super().work(*args, **kwargs)
