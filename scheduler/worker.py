"""The RQ worker class for scheduling passes."""

import gc
import time

from django.conf import settings
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker


class PromptScheduler(RQScheduler):
    """rq's scheduler, polling for due jobs every SCHEDULER_POLL_MS instead of every
    second: a pass deferred to the end of its cluster's merge window (scheduler.jobs)
    is due then, and a one-second poll would add up to a second to its wait. A poll is
    one short Redis round trip, made by one scheduler process for all the workers."""

    def work(self) -> None:
        # rq's loop (rq.scheduler.RQScheduler.work, rq 3.0), with the heartbeat kept at
        # its `interval` (whole seconds: rq's lock and key TTLs are `interval + 60`).
        self._install_signal_handlers()
        self.register_birth()
        poll = settings.SCHEDULER_POLL_MS / 1000
        next_heartbeat = 0.0
        while not self._stop_requested:
            if time.monotonic() >= next_heartbeat:
                if self.should_reacquire_locks:
                    self.acquire_locks()
                self.heartbeat()
                next_heartbeat = time.monotonic() + self.interval
            self.enqueue_scheduled_jobs()
            time.sleep(poll)
        self.stop()


class SchedulerWorker(SimpleWorker):
    """rq's SimpleWorker (passes run in the worker process: no fork and no new database
    connection per job) with its start-up heap frozen out of the garbage collector, and
    rq's scheduler (`--with-scheduler`) polling often enough for deferred passes.

    Django's start-up leaves a large heap that every full collection rescans; frozen, a
    pass's tail latency is its own work (docs/benchmarks.md, `--freeze-gc`).
    """

    def work(self, *args, **kwargs):
        gc.freeze()
        return super().work(*args, **kwargs)

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        # rq builds its RQScheduler here with a fixed one-second interval; the same steps
        # with ours (rq.worker.base.BaseWorker._start_scheduler, rq 3.0).
        self.scheduler = PromptScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()
