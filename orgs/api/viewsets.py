"""The base of every viewset over an organization's objects: tenant scoping in one place.

`OrganizationScopedViewSet` reads through a selector scoped to the caller
(`selector(user=..., **filters)`), and gives every writable related field of its
serializers a queryset scoped to the caller too (`related_scopes`). A writable related
field without a scope is an error at the first request, so the next viewset cannot
forget tenant scoping (DRF applies no object permission to the object a related field
names). Role checks go through `orgs.permissions` (`action_permissions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from rest_framework import serializers, viewsets
from rest_framework.relations import RelatedField

from orgs.permissions import OrganizationPermission

# (viewset) -> the queryset a related field may name, scoped to the caller.
Scope = Callable[[viewsets.GenericViewSet], QuerySet]


class OrganizationScopedViewSet(viewsets.GenericViewSet):
    permission_classes = [*viewsets.GenericViewSet.permission_classes, OrganizationPermission]
    lookup_value_regex = "[0-9]{1,18}"
    # Set by subclasses: the scoped read (a selector taking `user=` and the list filters).
    selector: ClassVar[Callable[..., QuerySet]]
    # The list's query parameters (a serializer: a bad value is 400 naming it), and the
    # selector's keyword for each parameter whose name differs.
    filter_serializer_class: ClassVar[type[serializers.Serializer] | None] = None
    filter_kwargs: ClassVar[dict[str, str]] = {}
    # Every writable related field of the serializers, by name.
    related_scopes: ClassVar[dict[str, Scope]] = {}
    action_permissions: ClassVar[dict[str, str]] = {}

    def get_queryset(self) -> QuerySet:
        filters = {}
        if self.action == "list" and self.filter_serializer_class is not None:
            params = self.filter_serializer_class(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            filters = {
                self.filter_kwargs.get(name, name): value
                for name, value in params.validated_data.items()
            }
        return type(self).selector(user=self.request.user, **filters)

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if getattr(self, "swagger_fake_view", False):
            return serializer
        # A list (many=True) only reads: it has no writable field to scope.
        for name, field in getattr(serializer, "fields", {}).items():
            if field.read_only or not isinstance(field, RelatedField):
                continue
            scope = self.related_scopes.get(name)
            if scope is None:
                raise ImproperlyConfigured(
                    f"{type(self).__name__}: the writable related field '{name}' of "
                    f"{type(serializer).__name__} has no tenant scope in related_scopes."
                )
            field.queryset = scope(self)
        return serializer
