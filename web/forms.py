"""The deployment submission form: the API serializer's rules, as a Django form.

The form checks shape (types, ranges, lengths) exactly as
`deployments.api.serializers.DeploymentCreateSerializer` does; everything else (the
image grammar, capacity, dependencies) is `deployments.services.deployment_create`'s,
whose `ValidationError` lands next to the field it is about (`attach_service_errors`).
"""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from accounts.services import TOKEN_DEFAULT_DAYS, TOKEN_MAX_DAYS
from clusters.models import Cluster
from deployments.images import validate_image_reference
from deployments.models import MAX_PRIORITY, Condition, Status
from deployments.selectors import parse_ordering
from deployments.services import (
    DependencySpec,
    DeploymentSpec,
    capacity_refusal,
    whole_cpu_refusal,
)
from hypervisor.fields import validate_display_text
from hypervisor.resources import BY_NAME, Resources

MILLI = Decimal(1000)
MAX_ID = 2**63 - 1
_DEPENDENCY_ITEM = re.compile(r"#?(?P<id>[0-9]{1,19})(?::(?P<condition>[a-z]+))?", re.ASCII)


class _AsciiDigits:
    """Django's number fields read "\u0661" (an Arabic-Indic one) as 1, as `int()` and
    `Decimal()` do; the page, like the API (`hypervisor.fields`), takes ASCII only."""

    def to_python(self, value):
        if isinstance(value, str) and not value.isascii():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class DecimalField(_AsciiDigits, forms.DecimalField):
    pass


class IntegerField(_AsciiDigits, forms.IntegerField):
    pass


class ClusterChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, cluster: Cluster) -> str:
        capacity = cluster.capacity.in_line()
        return f"{cluster.name} (capacity {capacity})"


class ResourceFields(forms.Form):
    """A resource vector's three fields (a request, or a capacity), as the API checks them."""

    cpu = DecimalField(
        label="CPU (cores)",
        max_digits=9,
        decimal_places=3,
        min_value=Decimal(0),
        max_value=Decimal(BY_NAME["cpu"].maximum) / MILLI,
        help_text="Up to 3 decimals: 0.25 is a quarter of a core.",
    )
    ram_mb = IntegerField(label="RAM (MiB)", min_value=0, max_value=BY_NAME["ram_mb"].maximum)
    gpu = IntegerField(label="GPUs", min_value=0, max_value=BY_NAME["gpu"].maximum, initial=0)

    RESOURCE_FIELDS = ("cpu", "ram_mb", "gpu")

    def resources(self) -> Resources:
        data = self.cleaned_data
        return Resources(int(data["cpu"] * MILLI), data["ram_mb"], data["gpu"])


class DeploymentForm(ResourceFields):
    cluster = ClusterChoiceField(queryset=Cluster.objects.none(), empty_label=None)
    name = forms.CharField(max_length=100, validators=[validate_display_text])
    image = forms.CharField(
        max_length=512,
        help_text="A Docker/OCI image reference, e.g. registry.example.com:5000/team/trainer:1.4",
    )
    priority = IntegerField(
        min_value=0, max_value=MAX_PRIORITY, initial=0, help_text="Higher runs first."
    )
    preemptible = forms.BooleanField(
        required=False,
        initial=True,
        help_text="May be stopped (and queued again) to make room for higher priority work.",
    )
    depends_on = forms.CharField(
        label="Depends on",
        required=False,
        max_length=4000,
        help_text="Deployment ids, separated by commas. It waits until each has succeeded; "
        "write 12:finished or 12:failed for another condition.",
    )

    field_order = ["cluster", "name", "image", "cpu", "ram_mb", "gpu"]

    def __init__(self, *args, clusters, **kwargs) -> None:
        super().__init__(*args, label_suffix="", **kwargs)
        self.fields["cluster"].queryset = clusters

    def clean_image(self) -> str:
        # The service's own check, here too so that it is reported with the rest.
        image = self.cleaned_data["image"]
        validate_image_reference(image)
        return image

    def clean(self) -> dict:
        """What can be checked before the service: with the shape, the capacity, so that
        every problem of the form shows in one round."""
        data = super().clean()
        if all(data.get(name) is not None for name in ("cluster", *self.RESOURCE_FIELDS)):
            exceeding = self._exceeding_fields()
            refusal = whole_cpu_refusal(cluster=data["cluster"], resources=self.resources())
            for name in exceeding:
                self.add_error(name, capacity_refusal(exceeding))
            if refusal:
                self.add_error("cpu", refusal)
        return data

    def clean_depends_on(self) -> tuple[DependencySpec, ...]:
        text = self.cleaned_data["depends_on"]
        items = [item.strip() for item in text.split(",") if item.strip()]
        limit = settings.DEPLOYMENT_MAX_DEPENDENCIES
        if len(items) > limit:
            raise ValidationError(f"At most {limit} dependencies.")
        specs = []
        for item in items:
            match = _DEPENDENCY_ITEM.fullmatch(item)
            condition = (match and match["condition"]) or Condition.SUCCEEDED.value
            if match is None or not 1 <= int(match["id"]) <= MAX_ID:
                raise ValidationError(f"'{item}' is not a deployment id.")
            if condition not in Condition.values:
                raise ValidationError(
                    f"'{condition}' is not a condition; use one of {', '.join(Condition.values)}."
                )
            specs.append(DependencySpec(int(match["id"]), Condition(condition)))
        return tuple(specs)

    def spec(self) -> DeploymentSpec:
        data = self.cleaned_data
        return DeploymentSpec(
            name=data["name"],
            image=data["image"],
            resources=self.resources(),
            priority=data["priority"],
            preemptible=data["preemptible"],
            depends_on=data["depends_on"],
        )

    def attach_service_errors(self, error: ValidationError) -> None:
        """Put the service's refusals next to the fields they are about."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        exceeding = self._exceeding_fields()  # before add_error trims cleaned_data
        for key, messages in error.message_dict.items():
            if key == "resources":
                for name in exceeding or [None]:
                    self.add_error(name, messages)
            elif key in self.fields:
                self.add_error(key, messages)
            else:
                self.add_error(None, messages)

    def _exceeding_fields(self) -> list[str]:
        data = self.cleaned_data
        short = self.resources().shortfall(data["cluster"].capacity)
        return [name for name in self.RESOURCE_FIELDS if getattr(short, name)]


# The list's sort choices: (ordering, label); column headers toggle between the two
# directions of a field, so both are here for every sortable column.
SORTS = [
    ("-created_at", "Submitted, newest first"),
    ("created_at", "Submitted, oldest first"),
    ("-priority", "Priority, highest first"),
    ("priority", "Priority, lowest first"),
    ("name", "Name, A to Z"),
    ("-name", "Name, Z to A"),
    ("cluster", "Cluster, A to Z"),
    ("-cluster", "Cluster, Z to A"),
    ("status", "Status, A to Z"),
    ("-status", "Status, Z to A"),
    ("-id", "ID, highest first"),
    ("id", "ID, lowest first"),
    ("-started_at", "Started, newest first"),
    ("-finished_at", "Finished, newest first"),
]
DEFAULT_SORT = "-created_at"


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user) -> str:
        return user.get_username()


class DeploymentListForm(forms.Form):
    """The deployments page's filters (a GET form): the API list's, for people."""

    search = forms.CharField(
        required=False, max_length=200, help_text="Part of the name or the image."
    )
    cluster = forms.ModelChoiceField(
        queryset=Cluster.objects.none(), required=False, empty_label="All clusters"
    )
    status = forms.MultipleChoiceField(
        choices=Status.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    priority_min = IntegerField(
        label="Priority from", required=False, min_value=0, max_value=MAX_PRIORITY
    )
    priority_max = IntegerField(
        label="Priority to", required=False, min_value=0, max_value=MAX_PRIORITY
    )
    created_by = MemberChoiceField(
        label="Submitted by",
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label="Anyone",
    )
    ordering = forms.ChoiceField(label="Sort by", choices=SORTS, required=False)

    def __init__(self, *args, clusters, members, **kwargs) -> None:
        super().__init__(*args, label_suffix="", **kwargs)
        self.fields["cluster"].queryset = clusters
        self.fields["created_by"].queryset = members

    def clean(self) -> dict:
        data = super().clean()
        low, high = data.get("priority_min"), data.get("priority_max")
        if low is not None and high is not None and low > high:
            self.add_error("priority_max", "Must not be below “Priority from”.")
        return data

    def criteria(self, *, organization_id: int) -> dict:
        """The keyword arguments of `deployments.selectors.deployment_search`."""
        data = self.cleaned_data
        return {
            "organization_id": organization_id,
            "cluster_id": data["cluster"].pk if data.get("cluster") else None,
            "statuses": tuple(data.get("status") or ()),
            "search": data.get("search", ""),
            "priority_min": data.get("priority_min"),
            "priority_max": data.get("priority_max"),
            "created_by_id": data["created_by"].pk if data.get("created_by") else None,
            "ordering": parse_ordering(data.get("ordering") or DEFAULT_SORT),
        }


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        validators=[validate_display_text],
        help_text="What or who will use it, e.g. ci-nightly.",
    )
    expires_in_days = IntegerField(
        label="Expires after (days)",
        min_value=1,
        max_value=TOKEN_MAX_DAYS,
        initial=TOKEN_DEFAULT_DAYS,
        help_text=f"At most {TOKEN_MAX_DAYS}.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, label_suffix="", **kwargs)
