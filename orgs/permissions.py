"""The one permission check: may this user do this action in this organization?

A role is a `Group`; its permissions (e.g. `clusters.add_cluster`) say what members
with that role may do. Viewsets declare which permission each action needs.
Outsiders never reach these checks: viewsets scope their querysets to the caller's
organizations, so another tenant's object is a 404 before any 403 could leak it.
"""

from __future__ import annotations

from django.db.models import Model
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from orgs.selectors import organization_permissions, role_permissions


def org_permissions(request: Request, organization_id: int) -> frozenset[str]:
    """The caller's permissions in an organization, memoized for the request."""
    cache: dict[int, frozenset[str]] = request.__dict__.setdefault("_org_permissions", {})
    if organization_id not in cache:
        cache[organization_id] = organization_permissions(
            user=request.user, organization_id=organization_id
        )
    return cache[organization_id]


def remember_role(request: Request, organization_id: int, *, group_id: int) -> None:
    """Memoize the caller's permissions in an organization from their membership's group,
    when a query the view needed anyway has read it (saves the membership query)."""
    cache: dict[int, frozenset[str]] = request.__dict__.setdefault("_org_permissions", {})
    cache[organization_id] = role_permissions(group_id=group_id)


ROLE_DENIED = "Your role in this organization does not allow this action."


def require_org_permission(request: Request, organization_id: int, permission: str) -> None:
    """Raise 403 unless the caller's role in the organization grants `permission`."""
    if permission not in org_permissions(request, organization_id):
        raise PermissionDenied(ROLE_DENIED)


class OrganizationPermission(BasePermission):
    """Checks `view.action_permissions[view.action]` against the object's organization.

    Views give the organization of an object with `organization_id_of(obj)`. Actions
    without an object (create) call `require_org_permission` once they know it.
    """

    def has_object_permission(self, request: Request, view: APIView, obj: Model) -> bool:
        permission = view.action_permissions.get(view.action)
        if permission is not None:
            require_org_permission(request, view.organization_id_of(obj), permission)
        return True
