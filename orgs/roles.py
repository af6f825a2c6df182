"""What each organization role may do, as model permissions on one `Group` per role.

The table follows API.md's roles table. A data migration creates the groups, and a
`post_migrate` receiver keeps them in step with this table (as Django does for
permissions), so a database flushed by tests or restored from an old dump gets them back.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.contrib.auth.management import create_permissions

READ = (
    "orgs.view_organization",
    "orgs.view_membership",
    "clusters.view_cluster",
    "deployments.view_deployment",
    "deployments.view_deploymentevent",
)
# add_deployment: create deployments and complete/fail/cancel one's own.
DEVELOPER = (*READ, "deployments.add_deployment")
# change_deployment: complete/fail/cancel anyone's.
ADMIN = (
    *DEVELOPER,
    "deployments.change_deployment",
    "clusters.add_cluster",
    "clusters.change_cluster",
    "clusters.delete_cluster",
    "orgs.manage_invite_code",
    "orgs.change_membership",
    "orgs.delete_membership",
)
OWNER = (*ADMIN, "orgs.change_organization", "orgs.delete_organization", "orgs.assign_owner")
ROLE_PERMISSIONS = {"owner": OWNER, "admin": ADMIN, "developer": DEVELOPER, "viewer": READ}


def sync_role_groups(apps: Apps) -> None:
    """Create the role groups if missing and give each exactly its permissions.

    Model permissions are normally created after `migrate` finishes, app by app; create
    them first so that the groups can be filled on a fresh or flushed database.
    """
    for app_config in apps.get_app_configs():
        # Migration-state app configs have no models module, and create_permissions
        # skips those; lend one for the call and put back what was there.
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(wanted)


def sync_role_groups_after_migrate(sender, apps: Apps = global_apps, **kwargs) -> None:
    """`post_migrate` receiver (connected for the orgs app). `flush` sends the signal
    without `apps`: the live registry serves then."""
    sync_role_groups(apps)
