"""Django's user admin, plus each user's organizations and roles (read-only here)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from orgs.admin import ReadOnlyMembershipInline


class UserMembershipInline(ReadOnlyMembershipInline):
    """A user's organizations and roles."""

    related = "organization"
    verbose_name_plural = "organizations"


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class HypervisorUserAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, UserMembershipInline]
