from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OrgsConfig(AppConfig):
    name = "orgs"

    def ready(self) -> None:
        from orgs.roles import sync_role_groups_after_migrate

        post_migrate.connect(sync_role_groups_after_migrate, sender=self)
