from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_migrate


class OrgsConfig(AppConfig):
    name = "orgs"

    def ready(self) -> None:
        from django.contrib.auth.models import Group

        from orgs.roles import sync_role_groups_after_migrate
        from orgs.signals import group_deleted, group_permissions_changed

        post_migrate.connect(sync_role_groups_after_migrate, sender=self)
        # Role permissions are cached per process (orgs.selectors.role_permissions).
        m2m_changed.connect(group_permissions_changed, dispatch_uid="orgs.group_permissions")
        post_delete.connect(group_deleted, sender=Group, dispatch_uid="orgs.group_deleted")
