"""Operators' admin for runtimes (the admin is staff-only: endpoints and credentials
are seen nowhere else). Writes call `runtime.services`; credentials are write-only."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from hypervisor.admin import ServiceModelAdmin
from orgs.models import Organization
from runtime import services
from runtime.models import Runtime
from runtime.selectors import runtime_capacity_text

MILLI = Decimal(1000)


class RuntimeForm(forms.ModelForm):
    organizations_field = forms.ModelMultipleChoiceField(
        label="Organizations",
        queryset=Organization.objects.order_by("name"),
        required=False,
        help_text="Empty: available to every organization.",
    )
    capacity_cores = forms.DecimalField(
        label="CPU capacity (cores)",
        required=False,
        max_digits=12,
        decimal_places=3,
        min_value=Decimal(0),
        help_text="Capacity is all three dimensions or none; it bounds the sum of the "
        "capacities of the clusters attached to the runtime.",
    )
    capacity_ram_mb = forms.IntegerField(label="RAM capacity (MiB)", required=False, min_value=0)
    capacity_gpu = forms.IntegerField(label="GPU capacity", required=False, min_value=0)
    tls_ca = forms.CharField(
        label="TLS CA certificate (PEM)", required=False, widget=forms.Textarea
    )
    tls_cert = forms.CharField(
        label="TLS client certificate (PEM)", required=False, widget=forms.Textarea
    )
    tls_key = forms.CharField(
        label="TLS client key (PEM)", required=False, widget=forms.PasswordInput(render_value=False)
    )

    class Meta:
        model = Runtime
        fields = ["name", "kind", "endpoint", "options"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["organizations_field"].initial = list(self.instance.organizations.all())

    def capacity(self) -> services.RuntimeCapacity | None:
        data = self.cleaned_data
        values = (data.get("capacity_cores"), data.get("capacity_ram_mb"), data.get("capacity_gpu"))
        if all(value is None for value in values):
            return None
        if any(value is None for value in values):
            raise forms.ValidationError("A capacity is all three dimensions, or none.")
        return services.RuntimeCapacity(int(values[0] * MILLI), values[1], values[2])

    def credentials(self) -> dict[str, str]:
        data = self.cleaned_data
        keys = {"ca_cert": "tls_ca", "client_cert": "tls_cert", "client_key": "tls_key"}
        return {key: data[field] for key, field in keys.items() if data.get(field)}

    def clean(self) -> dict:
        data = super().clean()
        if not self.instance.pk:
            self.capacity()
        return data


@admin.register(Runtime)
class RuntimeAdmin(ServiceModelAdmin):
    form = RuntimeForm
    list_display = ["name", "kind", "endpoint", "status", "status_since", "capacity"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "endpoint"]

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return [
                "name",
                "kind",
                "endpoint",
                "options",
                "capacity_cores",
                "capacity_ram_mb",
                "capacity_gpu",
                "organizations_field",
                "tls_ca",
                "tls_cert",
                "tls_key",
            ]
        return [
            "name",
            "kind",
            "endpoint",
            "options",
            "capacity",
            "organizations_field",
            "status",
            "status_since",
            "status_detail",
            "has_credentials",
            "created_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return []
        # What running workloads depend on does not change under them: remove and add.
        return [
            "name",
            "kind",
            "endpoint",
            "options",
            "capacity",
            "status",
            "status_since",
            "status_detail",
            "has_credentials",
            "created_at",
        ]

    @admin.display(description="capacity")
    def capacity(self, runtime: Runtime) -> str:
        return runtime_capacity_text(runtime)

    @admin.display(description="credentials", boolean=True)
    def has_credentials(self, runtime: Runtime) -> bool:
        return bool(runtime.credentials)

    def save_model(
        self, request: HttpRequest, obj: Runtime, form: RuntimeForm, change: bool
    ) -> None:
        data = form.cleaned_data
        organization_ids = [o.pk for o in data["organizations_field"]]
        if change:
            services.runtime_set_organizations(runtime=obj, organization_ids=organization_ids)
            return
        created = services.runtime_add(
            spec=services.RuntimeSpec(
                name=data["name"],
                kind=data["kind"],
                endpoint=data["endpoint"],
                options=data["options"] or {},
                credentials=form.credentials(),
                capacity=form.capacity(),
            ),
            organization_ids=organization_ids,
        )
        obj.pk = created.pk

    def save_related(self, request, form, formsets, change) -> None:
        """The organizations were set by the service in `save_model`."""

    def delete_model(self, request: HttpRequest, obj: Runtime) -> None:
        services.runtime_remove(name=obj.name)
