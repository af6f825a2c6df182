"""Receivers connected in `OrgsConfig.ready()`: one line each, calling into selectors."""

from __future__ import annotations

from django.db import transaction

from orgs.selectors import forget_role_permissions

# The m2m table behind `Group.permissions`. Matched by table: migrations (which fill the
# role groups) send the signal with their historical models as senders.
_GROUP_PERMISSIONS_TABLE = "auth_group_permissions"


def group_permissions_changed(sender, **kwargs) -> None:
    """An operator (or `migrate`) edited a role's permissions: forget the cached roles now,
    and again once the edit commits (a request in between may have read the old rows)."""
    if sender._meta.db_table == _GROUP_PERMISSIONS_TABLE:
        forget_role_permissions()
        transaction.on_commit(forget_role_permissions)


def group_deleted(sender, **kwargs) -> None:
    forget_role_permissions()
