"""API tokens in the admin: listed for staff, revoked (deleted) through the service.
(The user admin, with each user's organizations, is `orgs.admin`'s.)"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import ApiToken
from accounts.services import token_revoke
from hypervisor.admin import ServiceModelAdmin


@admin.register(ApiToken)
class ApiTokenAdmin(ServiceModelAdmin):
    """Operators see who holds which token and revoke one (delete); nobody sees or
    creates a secret here: users create their own, on the tokens page or the API."""

    list_display = ["name", "user", "created_at", "expires_at", "last_used_at"]
    list_select_related = ["user"]
    list_filter = ["expires_at"]
    search_fields = ["name", "user__username"]
    fields = ["user", "name", "created_at", "expires_at", "last_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        token_revoke(user=obj.user, token_id=obj.pk)
