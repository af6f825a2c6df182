"""The base viewset scopes every writable related field, and refuses one it cannot scope."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers
from rest_framework.test import APIRequestFactory, force_authenticate

from orgs.api.viewsets import OrganizationScopedViewSet
from orgs.models import Organization
from orgs.selectors import organization_list
from orgs.tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


class _NamesAnOrganization(serializers.Serializer):
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.all())


def _serializer_for(viewset_class, user):
    request = APIRequestFactory().post("/", {})
    force_authenticate(request, user=user)
    viewset = viewset_class(action_map={"post": "create"}, format_kwarg=None, kwargs={})
    viewset.request = viewset.initialize_request(request)
    return viewset.get_serializer(data={})


def test_a_writable_related_field_without_a_scope_is_refused(developer):
    class Forgetful(OrganizationScopedViewSet):
        serializer_class = _NamesAnOrganization
        selector = staticmethod(organization_list)

    with pytest.raises(ImproperlyConfigured, match=r"'organization'.*no tenant scope"):
        _serializer_for(Forgetful, developer)


def test_a_scoped_related_field_names_only_the_callers_objects(developer, organization):
    class Scoped(OrganizationScopedViewSet):
        serializer_class = _NamesAnOrganization
        selector = staticmethod(organization_list)
        related_scopes = {
            "organization": lambda view: Organization.objects.visible_to(view.request.user)
        }

    OrganizationFactory()  # another tenant's
    field = _serializer_for(Scoped, developer).fields["organization"]
    assert list(field.queryset) == [organization]
