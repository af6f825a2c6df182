"""Organizations (tenants) and memberships with roles."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models


class Role(models.TextChoices):
    """Roles from most to least power. Each is a `Group` carrying its model permissions."""

    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    DEVELOPER = "developer", "Developer"
    VIEWER = "viewer", "Viewer"

    @property
    def rank(self) -> int:
        """Larger is more powerful."""
        return {"owner": 3, "admin": 2, "developer": 1, "viewer": 0}[self.value]


def new_invite_code() -> str:
    """128 random bits, URL-safe (API.md asks for at least 80)."""
    return secrets.token_urlsafe(16)


class OrganizationQuerySet(models.QuerySet["Organization"]):
    def visible_to(self, user) -> OrganizationQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


class Organization(models.Model):
    """A tenant: it owns clusters and, through them, deployments."""

    name = models.CharField(max_length=100)
    invite_code = models.CharField(max_length=64, unique=True, default=new_invite_code)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        permissions = [
            ("manage_invite_code", "Can see and rotate the invite code"),
            ("assign_owner", "Can make owners"),
        ]

    def __str__(self) -> str:
        return self.name


class MembershipQuerySet(models.QuerySet["Membership"]):
    def visible_to(self, user) -> MembershipQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(organization__memberships__user=user)

    def owners(self) -> MembershipQuerySet:
        return self.filter(group__name=Role.OWNER)


class Membership(models.Model):
    """A user's place in an organization. The role *is* the group it points at."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["organization_id", "user_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="membership_one_per_user_and_org"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def role(self) -> Role:
        return Role(self.group.name)


class FormerMembership(models.Model):
    """The role a user had when they left (or were removed from) an organization.

    Joining again with an invite code gives the lower of `developer` and this role: a
    member demoted to viewer does not leave and rejoin as a developer.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="former_memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="former_memberships"
    )
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="+")
    left_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="former_membership_one_per_user_and_org"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} formerly in {self.organization} ({self.group.name})"
