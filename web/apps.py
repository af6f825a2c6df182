from django.apps import AppConfig


class WebConfig(AppConfig):
    """Server-rendered pages for people: sign in, dashboards, deployments, the demo."""

    name = "web"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from web.sessions import slid_at_sign_in

        user_logged_in.connect(slid_at_sign_in, dispatch_uid="web.sessions.slid_at_sign_in")
