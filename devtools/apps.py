from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Installed only for its `bench_*` management commands (settings.DEVTOOLS)."""

    name = "devtools"
