"""The project's serializer base: DRF's ModelSerializer with its fields built once per class."""

from __future__ import annotations

import copy

from django.db import models
from rest_framework import serializers

from hypervisor import fields as strict


# DRF's ModelSerializer rebuilds its fields from the model's metadata for every instance
# it makes: 0.7 ms for a deployment, on every request that reads or writes one. The fields
# depend only on the class (its declarations and `Meta`), so they are built once per class
# and every instance gets a fresh copy, as DRF's plain `Serializer` does with its declared
# fields. A view may still change its instance's fields (a scoped queryset): the template
# is never handed out. (A comment, not a docstring: drf-spectacular would publish a
# docstring as the description of every serializer that has none of its own.)
# Fields made from a model's are strict too (hypervisor.fields): no number for a string.
class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: strict.CharField,
        models.TextField: strict.CharField,
        models.IntegerField: strict.IntegerField,
        models.BigIntegerField: strict.IntegerField,
        models.PositiveIntegerField: strict.IntegerField,
        models.DecimalField: strict.DecimalField,
    }

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        # Looked up in the class's own namespace: a subclass builds its own.
        template = cls.__dict__.get("_field_template")
        if template is None:
            template = super().get_fields()
            cls._field_template = template  # two threads may both build it: same result
        return copy.deepcopy(template)
