"""One Group per organization role, carrying the model permissions of API.md's role table.

A membership points at its role's group; `orgs.selectors.organization_permissions` reads
what the group grants.
"""

from django.db import migrations

from orgs.roles import ROLE_PERMISSIONS, sync_role_groups


def create_role_groups(apps, schema_editor):
    sync_role_groups(apps)


def remove_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orgs", "0001_initial"),
        ("clusters", "0001_initial"),
        ("deployments", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
