"""Load, fault and fuzz runs against a real local stack (see docs/benchmarks.md).

Plain Python on the driver side: the driver talks HTTP to gunicorn and runs
`manage.py` in subprocesses; it never imports Django itself.
"""
