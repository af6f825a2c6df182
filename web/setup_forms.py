"""Forms of the team's set-up pages: sign up, organizations, members, clusters.

Each checks shape only, with the limits of the matching API serializer; the rules
(password validators, unique names, the roles matrix, capacity below what is held) are
the services', whose `ValidationError` the views put next to the field it is about
(`attach_errors`).
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from clusters.models import MAX_STARVATION_SECONDS, Cluster
from orgs.models import Role
from planner import Policy
from web.forms import MILLI, ResourceFields


class LabelledForm(forms.Form):
    """No colon after labels; service errors land on their field (or the whole form)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, label_suffix="", **kwargs)

    def attach_errors(self, error: ValidationError) -> None:
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for key, messages in error.message_dict.items():
            self.add_error(key if key in self.fields else None, messages)


class SignUpForm(LabelledForm):
    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    email = forms.EmailField(
        required=False,
        label="Email (optional)",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        max_length=128,
        strip=False,
        help_text="At least 8 characters, not only digits, not a common password.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class OrganizationForm(LabelledForm):
    name = forms.CharField(
        max_length=100, help_text="Your team's name, e.g. ml-research.", widget=forms.TextInput()
    )


class JoinForm(LabelledForm):
    invite_code = forms.CharField(
        max_length=64,
        help_text="An owner or admin of the organization finds it on its Team page.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class RoleForm(LabelledForm):
    role = forms.ChoiceField(choices=Role.choices)


class ClusterForm(ResourceFields, LabelledForm):
    """Create or change a cluster (every field, as on creation; PATCH sends them all)."""

    field_order = ["name", "cpu", "ram_mb", "gpu", "policy", "starvation_after_seconds"]

    name = forms.CharField(max_length=100)
    policy = forms.ChoiceField(
        label="Scheduling policy",
        choices=[(policy.value, policy.value) for policy in Policy],
        initial=Policy.PACK.value,
        help_text="pack: run as many deployments as possible, priority by priority, then "
        "use the room best; fifo: queue order within a priority, with backfill.",
    )
    starvation_after_seconds = forms.IntegerField(
        label="Starvation protection (seconds)",
        required=False,
        min_value=1,
        max_value=MAX_STARVATION_SECONDS,
        help_text="A deployment queued longer than this gets room reserved for it. "
        "Leave empty for none.",
    )

    @classmethod
    def initial_for(cls, cluster: Cluster) -> dict:
        capacity = cluster.capacity
        return {
            "name": cluster.name,
            "cpu": Decimal(capacity.cpu) / MILLI,
            "ram_mb": capacity.ram_mb,
            "gpu": capacity.gpu,
            "policy": cluster.policy,
            "starvation_after_seconds": cluster.starvation_after_seconds,
        }

    def attach_errors(self, error: ValidationError) -> None:
        if hasattr(error, "error_dict") and "capacity" in error.error_dict:
            error = ValidationError(
                {("cpu" if k == "capacity" else k): v for k, v in error.error_dict.items()}
            )
        super().attach_errors(error)
