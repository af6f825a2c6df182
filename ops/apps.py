from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: health and readiness probes, request ids, JSON logs, Prometheus metrics."""

    name = "ops"

    def ready(self) -> None:
        from ops import metrics
        from scheduler.services import pass_finished

        pass_finished.connect(metrics.observe_pass, dispatch_uid="ops.metrics.observe_pass")
