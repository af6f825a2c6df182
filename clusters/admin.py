"""Operators' admin for clusters: which are full, what waits, and a pass on demand.

Writes call `clusters.services` (create, change, delete) and `clusters.signals.want_pass`
(the reschedule action). Counts come from one annotated query, never one per row.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from clusters import selectors, services
from clusters.models import MAX_STARVATION_SECONDS, Cluster
from clusters.signals import want_pass
from clusters.usage import Usage, cluster_usage
from hypervisor.admin import ServiceModelAdmin
from hypervisor.resources import BY_NAME, Resources
from planner import Policy

MILLI = Decimal(1000)


def usage_bar(usage: Usage) -> str:
    """One dimension as a small bar with its numbers."""
    if usage.capacity <= 0:
        return format_html('<span class="hv-none">{}</span>', "none")
    return format_html(
        '<span class="hv-usage" title="{summary}">'
        '<span class="hv-bar hv-{level}" role="meter" aria-valuemin="0" '
        'aria-valuemax="{capacity}" aria-valuenow="{allocated}" aria-label="{summary}">'
        '<span style="width: {percent}%"></span></span>'
        '<span class="hv-numbers">{allocated_text} / {capacity_text} · {percent}%</span>'
        "</span>",
        summary=usage.summary,
        level=usage.level,
        capacity=usage.capacity,
        allocated=usage.allocated,
        percent=usage.percent,
        allocated_text=usage.allocated_text,
        capacity_text=usage.capacity_text,
    )


class ClusterForm(forms.ModelForm):
    """Capacity in cores (like the API), checked against what is allocated."""

    capacity_cores = forms.DecimalField(
        label="CPU capacity (cores)",
        max_digits=9,
        decimal_places=3,
        min_value=Decimal(0),
        max_value=Decimal(BY_NAME["cpu"].maximum) / MILLI,
    )
    capacity_ram_mb = forms.IntegerField(
        label="RAM capacity (MiB)", min_value=0, max_value=BY_NAME["ram_mb"].maximum
    )
    capacity_gpu = forms.IntegerField(
        label="GPU capacity", min_value=0, max_value=BY_NAME["gpu"].maximum
    )
    starvation_after_seconds = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_STARVATION_SECONDS,
        help_text="Queued longer than this, a deployment holds a reservation. Empty: never.",
    )

    class Meta:
        model = Cluster
        fields = ["organization", "name", "policy", "starvation_after_seconds"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["capacity_cores"].initial = Decimal(self.instance.capacity_cpu) / MILLI

    def capacity(self) -> Resources:
        data = self.cleaned_data
        return Resources(
            int(data["capacity_cores"] * MILLI), data["capacity_ram_mb"], data["capacity_gpu"]
        )

    def clean(self) -> dict:
        data = super().clean()
        cluster = self.instance
        name = data.get("name")
        # On add, the model's unique constraint answers; on change the organization is
        # read-only, which leaves that constraint out of the form's validation.
        if name and cluster.pk:
            taken = Cluster.objects.filter(organization_id=cluster.organization_id, name=name)
            if taken.exclude(pk=cluster.pk).exists():
                self.add_error(
                    "name", "A cluster with this name already exists in the organization."
                )
        capacity_fields = ("capacity_cores", "capacity_ram_mb", "capacity_gpu")
        complete = cluster.pk and all(f in data for f in capacity_fields)
        # An early, friendly answer; the service re-checks under the cluster's lock.
        if complete and not cluster.allocated.fits_in(self.capacity()):
            raise forms.ValidationError(
                "The new capacity is below what running deployments hold; "
                "complete or cancel some first."
            )
        return data


@admin.register(Cluster)
class ClusterAdmin(ServiceModelAdmin):
    form = ClusterForm
    list_display = [
        "name",
        "organization",
        "policy",
        "cpu",
        "ram",
        "gpu",
        "work",
    ]
    list_filter = ["policy", "organization"]
    list_select_related = ["organization"]
    search_fields = ["name", "organization__name"]
    actions = ["reschedule"]

    class Media:
        css = {"all": ["web/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Cluster]:
        return selectors.with_counts(super().get_queryset(request))

    def get_fields(self, request: HttpRequest, obj=None):
        editable = [
            "name",
            "capacity_cores",
            "capacity_ram_mb",
            "capacity_gpu",
            "policy",
            "starvation_after_seconds",
        ]
        if obj is None:
            return ["organization", *editable]
        return [
            "organization",
            *editable,
            "cpu",
            "ram",
            "gpu",
            "running_count",
            "waiting_count",
            "created_at",
            "updated_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return []
        readonly = ["cpu", "ram", "gpu", "running_count", "waiting_count"]
        return ["organization", *readonly, "created_at", "updated_at"]

    @admin.display(description="CPU allocated")
    def cpu(self, cluster: Cluster) -> str:
        return usage_bar(cluster_usage(cluster)[0])

    @admin.display(description="RAM allocated")
    def ram(self, cluster: Cluster) -> str:
        return usage_bar(cluster_usage(cluster)[1])

    @admin.display(description="GPU allocated")
    def gpu(self, cluster: Cluster) -> str:
        return usage_bar(cluster_usage(cluster)[2])

    @admin.display(description="work", ordering="waiting_count")
    def work(self, cluster: Cluster) -> str:
        return f"{cluster.running_count} running, {cluster.waiting_count} waiting"

    @admin.display(description="running", ordering="running_count")
    def running_count(self, cluster: Cluster) -> int:
        return cluster.running_count

    @admin.display(description="waiting", ordering="waiting_count")
    def waiting_count(self, cluster: Cluster) -> int:
        return cluster.waiting_count

    def save_model(
        self, request: HttpRequest, obj: Cluster, form: ClusterForm, change: bool
    ) -> None:
        data = form.cleaned_data
        if not change:
            created = services.cluster_create(
                organization=data["organization"],
                name=data["name"],
                capacity=form.capacity(),
                policy=Policy(data["policy"]),
                starvation_after_seconds=data["starvation_after_seconds"],
            )
            obj.pk = created.pk
            return
        changed = set(form.changed_data)
        capacity_changed = bool(changed & {"capacity_cores", "capacity_ram_mb", "capacity_gpu"})
        services.cluster_update(
            cluster_id=obj.pk,
            changes=services.ClusterChanges(
                name=data["name"] if "name" in changed else None,
                capacity=form.capacity() if capacity_changed else None,
                policy=Policy(data["policy"]) if "policy" in changed else None,
                starvation_after_seconds=data["starvation_after_seconds"],
                starvation_set="starvation_after_seconds" in changed,
            ),
        )

    def ensure_deletable(self, obj: Cluster) -> None:
        services.cluster_ensure_idle(cluster=obj)

    def delete_model(self, request: HttpRequest, obj: Cluster) -> None:
        services.cluster_delete(cluster_id=obj.pk)

    @admin.action(description="Reschedule: run a scheduling pass now")
    def reschedule(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        clusters = list(queryset.order_by("pk"))
        for cluster in clusters:
            want_pass(cluster_id=cluster.pk)
            self.log_change(request, cluster, "Requested a scheduling pass.")
        cluster_ids = [cluster.pk for cluster in clusters]
        self.message_user(
            request, f"Requested a scheduling pass for {len(cluster_ids)} cluster(s)."
        )
