"""What every model admin of ours shares: writes go through services, never `save()`.

Django's admin wraps its change form and delete view in one `atomic()` block. Our
services own their transactions (the scheduling ones are `atomic(durable=True)`, and
their passes run on commit), so `ServiceModelAdmin` runs those views without the outer
block and lets each `save_model` / `delete_model` call exactly one service. A domain
error (`Conflict`, `ValidationError`) becomes an error message, not a 500.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from hypervisor.exceptions import Conflict

DomainError = (Conflict, ValidationError)


def error_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    if isinstance(error, Conflict):
        return error.message
    return str(error)


class ServiceModelAdmin(admin.ModelAdmin):
    """A model admin whose writes are service calls (see the module docstring)."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        try:
            # Without the admin's atomic block: the service called by save_model owns
            # its transaction, and a durable one cannot nest.
            return self._changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            self.message_user(request, error_text(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def ensure_deletable(self, obj) -> None:
        """Raise a domain error when the delete service would refuse `obj`: the refusal
        then comes before the confirmation page, not after it."""

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        try:
            obj = self.get_object(request, object_id)
            if obj is not None:
                self.ensure_deletable(obj)
            return self._delete_view(request, object_id, extra_context)
        except DomainError as error:
            self.message_user(request, error_text(error), messages.ERROR)
            opts = self.opts
            change_url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=[object_id],
                current_app=self.admin_site.name,
            )
            return HttpResponseRedirect(change_url)

    def get_deleted_objects(self, objs, request: HttpRequest):
        # The delete service decides what may go (a cluster with active work may not),
        # and takes its cascade with it: deployments, read-only in this admin, must not
        # make the confirmation page refuse on their own delete permission.
        deleted, model_count, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, model_count, set(), protected

    def get_actions(self, request: HttpRequest) -> dict:
        # Bulk delete would bypass the per-object service (and its refusals).
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
