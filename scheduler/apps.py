from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    name = "scheduler"

    def ready(self) -> None:
        from clusters.signals import pass_wanted
        from deployments.signals import cascade_left
        from runtime.signals import runtime_reachable_again
        from scheduler.signals import on_cascade_left, on_pass_wanted, on_runtime_reachable_again

        pass_wanted.connect(on_pass_wanted, dispatch_uid="scheduler.on_pass_wanted")
        cascade_left.connect(on_cascade_left, dispatch_uid="scheduler.on_cascade_left")
        runtime_reachable_again.connect(
            on_runtime_reachable_again, dispatch_uid="scheduler.on_runtime_reachable_again"
        )
