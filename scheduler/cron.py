"""`manage.py rqcron scheduler.cron`: the periodic safety-net pass over every cluster.

A separate process from the workers (compose runs it as `cron`); it only enqueues.
"""

from django.conf import settings
from rq import cron

from scheduler.jobs import safety_net_job

cron.register(safety_net_job, "default", interval=settings.SCHEDULER_SAFETY_NET_SECONDS)
