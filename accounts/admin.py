"""Django's user admin, plus each user's organizations and roles (read-only here)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from orgs.models import Membership


class UserMembershipInline(admin.TabularInline):
    """Roles change on the membership's own page, through `orgs.services`."""

    model = Membership
    fields = ["organization", "role", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "organizations"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return super().get_queryset(request).select_related("organization", "group")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="role")
    def role(self, membership: Membership) -> str:
        return membership.role.label


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class HypervisorUserAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, UserMembershipInline]
