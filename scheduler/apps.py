from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    name = "scheduler"

    def ready(self) -> None:
        from clusters.signals import pass_wanted
        from scheduler.signals import on_pass_wanted

        pass_wanted.connect(on_pass_wanted, dispatch_uid="scheduler.on_pass_wanted")
