from django.apps import AppConfig


class WebConfig(AppConfig):
    """Server-rendered pages for people: sign in, dashboards, deployments, the demo."""

    name = "web"
