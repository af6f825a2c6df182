"""gunicorn settings for `web` (read from the working directory: `gunicorn hypervisor.wsgi`).

Every value can be overridden by gunicorn's own GUNICORN_CMD_ARGS or the variables below.
See docs/operations.md.
"""

import os

wsgi_app = "hypervisor.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Sync workers: each request holds one process; the work is short database transactions.
# Two per core is plenty: the database, not Python, is the bottleneck under load.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Nothing is loaded before the fork: each worker opens its own database connection.
preload_app = False
# The app logs one JSON line per request (ops.middleware) with the request id; gunicorn's
# own access log would repeat it without the id.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Trust X-Forwarded-* only from the proxy in front (compose: anything on its network).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No runtime control socket (gunicornc): its default path ($HOME/.gunicorn/gunicorn.ctl)
# is shared by every gunicorn of a user, and the image's user cannot write $HOME.
control_socket_disable = True


def on_starting(server) -> None:
    """Prometheus multiprocess mode needs its directory to exist before workers start."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)


def post_worker_init(worker) -> None:
    """Freeze the loaded application's heap out of the garbage collector: full
    collections would otherwise rescan it on every request that triggers one."""
    import gc

    gc.freeze()
