"""Operators' admin for deployments: find them, read their history, cancel, reschedule.

Deployments are read-only here: they change only through `deployments.services`
(the cancel action) and scheduling passes (the reschedule action). The changelist
loads each row's cluster, organization and creator in the same query.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.filters import RelatedFieldListFilter
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join

from clusters.models import Cluster
from clusters.signals import want_pass
from deployments import services
from deployments.models import Dependency, Deployment, DeploymentEvent
from deployments.services import Action, InvalidTransition

_PAST = {Action.CANCEL: "cancelled", Action.FAIL: "failed", Action.COMPLETE: "completed"}


class PriorityFilter(admin.SimpleListFilter):
    """Priority bands (a list of every distinct value would not fit on screen)."""

    title = "priority"
    parameter_name = "priority_band"
    BANDS = {
        "0": ("0 (default)", {"priority": 0}),
        "1-99": ("1 to 99", {"priority__gte": 1, "priority__lte": 99}),
        "100-9999": ("100 to 9,999", {"priority__gte": 100, "priority__lte": 9_999}),
        "10000+": ("10,000 and above", {"priority__gte": 10_000}),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _lookup) in self.BANDS.items()]

    def queryset(self, request, queryset):
        band = self.BANDS.get(self.value() or "")
        return queryset.filter(**band[1]) if band else queryset


class ClusterFilter(RelatedFieldListFilter):
    """Clusters named with their organization (names are unique only within one)."""

    def field_choices(self, field, request, model_admin):
        clusters = Cluster.objects.select_related("organization").order_by(
            "organization__name", "name"
        )
        return [(c.pk, f"{c.organization.name} / {c.name}") for c in clusters]


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class DependencyInline(ReadOnlyInline):
    model = Dependency
    fk_name = "dependent"
    verbose_name = "dependency"
    verbose_name_plural = "depends on"
    fields = ["dependency", "condition", "dependency_status"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dependency]:
        return super().get_queryset(request).select_related("dependency")

    @admin.display(description="its status")
    def dependency_status(self, link: Dependency) -> str:
        return link.dependency.status


class EventInline(ReadOnlyInline):
    """The deployment's timeline, oldest first (an empty actor is the scheduler)."""

    model = DeploymentEvent
    fk_name = "deployment"
    verbose_name_plural = "timeline"
    fields = ["at", "from_status", "to_status", "reason", "actor", "related_deployment"]
    readonly_fields = fields
    ordering = ["at", "id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeploymentEvent]:
        return super().get_queryset(request).select_related("actor", "related_deployment")


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    # Fits 1280 px: the organization is in the cluster's column; the queue time and the
    # preemption count are on each deployment's page.
    list_display = [
        "id",
        "name",
        "status",
        "priority",
        "requests",
        "cluster_name",
        "created_by",
        "started_at",
    ]
    list_display_links = ["id", "name"]
    list_filter = [
        "status",
        "cluster__organization",
        ("cluster", ClusterFilter),
        PriorityFilter,
        "preemptible",
    ]
    list_select_related = ["cluster__organization", "created_by"]
    search_fields = ["=id", "name", "image", "cluster__name", "created_by__username"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    actions = ["cancel", "fail", "reschedule_cluster"]
    inlines = [DependencyInline, EventInline]
    fieldsets = [
        (None, {"fields": ["name", "image", "cluster", "organization", "created_by"]}),
        ("Request", {"fields": ["requests", "priority", "preemptible"]}),
        (
            "State",
            {
                "fields": [
                    "status",
                    "status_reason",
                    "preemption_count",
                    "dependents",
                    "created_at",
                    "queued_at",
                    "started_at",
                    "finished_at",
                    "updated_at",
                ]
            },
        ),
    ]
    readonly_fields = [field for _name, options in fieldsets for field in options["fields"]]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Deployment]:
        return super().get_queryset(request).select_related("cluster__organization", "created_by")

    # Deployments change only through services: no add, edit or delete forms.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_act_permission(self, request: HttpRequest) -> bool:
        """Cancel and reschedule: operators holding `deployments.change_deployment`."""
        return request.user.has_perm("deployments.change_deployment")

    @admin.display(description="requests")
    def requests(self, deployment: Deployment) -> str:
        return deployment.resources.in_line()

    @admin.display(description="cluster", ordering="cluster__name")
    def cluster_name(self, deployment: Deployment) -> str:
        return f"{deployment.cluster.organization.name} / {deployment.cluster.name}"

    @admin.display(description="organization", ordering="cluster__organization__name")
    def organization(self, deployment: Deployment) -> str:
        return deployment.cluster.organization.name

    @admin.display(description="what waits on it")
    def dependents(self, deployment: Deployment) -> str:
        links = Dependency.objects.filter(dependency=deployment).select_related("dependent")
        rows = [
            (
                reverse("admin:deployments_deployment_change", args=[link.dependent_id]),
                str(link.dependent),
                link.dependent.status,
                link.condition,
            )
            for link in links
        ]
        if not rows:
            return "nothing"
        return format_html_join(", ", '<a href="{}">{}</a> ({}, waits for {})', rows)

    @admin.action(description="Cancel the selected deployments…", permissions=["act"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Deployment]):
        return self._act(request, queryset, Action.CANCEL)

    @admin.action(description="Mark the selected deployments failed…", permissions=["act"])
    def fail(self, request: HttpRequest, queryset: QuerySet[Deployment]):
        return self._act(request, queryset, Action.FAIL)

    def _act(self, request: HttpRequest, queryset: QuerySet[Deployment], action: Action):
        """Ask first (a page listing them, like Django's delete), then act through the
        service on each, with a history entry (LogEntry) per deployment changed."""
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": f"{action.capitalize()} {queryset.count()} deployment(s)?",
                "action": action.value,
                "deployments": queryset.select_related("cluster").order_by("pk"),
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/deployments/confirm_action.html", context)
        done, refused = 0, []
        for deployment in queryset.order_by("pk"):
            try:
                services.deployment_act(
                    actor=request.user, deployment_id=deployment.pk, action=action
                )
            except (InvalidTransition, Deployment.DoesNotExist):
                refused.append(str(deployment.pk))
                continue
            done += 1
            self.log_change(request, deployment, f"{_PAST[action].capitalize()}.")
        if done:
            self.message_user(request, f"{_PAST[action].capitalize()} {done} deployment(s).")
        if refused:
            self.message_user(
                request,
                f"Not {_PAST[action]} (their status does not allow it, or gone): "
                f"{', '.join(refused)}.",
                messages.WARNING,
            )
        return None

    @admin.action(description="Reschedule their clusters: run a pass now", permissions=["act"])
    def reschedule_cluster(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        cluster_ids = sorted(set(queryset.values_list("cluster_id", flat=True)))
        for cluster_id in cluster_ids:
            want_pass(cluster_id=cluster_id)
        for deployment in queryset:
            self.log_change(request, deployment, "Requested a scheduling pass of its cluster.")
        self.message_user(
            request, f"Requested a scheduling pass for {len(cluster_ids)} cluster(s)."
        )
