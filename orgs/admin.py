"""Operators' admin for organizations and memberships; every write is a service call."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from hypervisor.admin import ServiceModelAdmin
from orgs import services
from orgs.models import Membership, Organization, Role


class RoleFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"

    def lookups(self, request, model_admin):
        return Role.choices

    def queryset(self, request, queryset):
        if self.value() in Role.values:
            return queryset.filter(group__name=self.value())
        return queryset


class ReadOnlyMembershipInline(admin.TabularInline):
    """Memberships at a glance; roles change and members leave on the membership's own
    page, through `orgs.services`. Subclasses name the other side (`related`)."""

    model = Membership
    related = "user"
    extra = 0
    can_delete = False
    show_change_link = True

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [self.related, "role", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return self.get_fields(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return super().get_queryset(request).select_related(self.related, "group")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="role")
    def role(self, membership: Membership) -> str:
        return membership.role.label


class MembershipInline(ReadOnlyMembershipInline):
    """An organization's members."""


class OrganizationAddForm(forms.ModelForm):
    owner = forms.CharField(
        max_length=150, help_text="Username of the first owner (organizations need one)."
    )

    class Meta:
        model = Organization
        fields = ["name"]

    def clean_owner(self):
        username = self.cleaned_data["owner"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError("No user with this username.")
        return user


@admin.register(Organization)
class OrganizationAdmin(ServiceModelAdmin):
    list_display = ["name", "id", "member_count", "cluster_count", "created_at"]
    search_fields = ["name", "=invite_code"]
    readonly_fields = ["invite_code", "created_at", "updated_at"]
    actions = ["rotate_invite_code"]
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Count("memberships", distinct=True),
                cluster_count=Count("clusters", distinct=True),
            )
        )

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = OrganizationAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ["name", "owner"]
        return ["name", "invite_code", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # No service renames an organization: the name is fixed once created.
        return self.readonly_fields if obj is None else [*self.readonly_fields, "name"]

    def get_inlines(self, request: HttpRequest, obj=None):
        return self.inlines if obj is not None else []

    @admin.display(description="members", ordering="member_count")
    def member_count(self, organization: Organization) -> int:
        return organization.member_count

    @admin.display(description="clusters", ordering="cluster_count")
    def cluster_count(self, organization: Organization) -> int:
        return organization.cluster_count

    def save_model(self, request: HttpRequest, obj: Organization, form, change: bool) -> None:
        if change:
            return  # nothing on the change form is editable
        created = services.organization_create(
            actor=form.cleaned_data["owner"], name=form.cleaned_data["name"]
        )
        obj.pk, obj.invite_code = created.pk, created.invite_code

    def delete_model(self, request: HttpRequest, obj: Organization) -> None:
        services.organization_delete(organization=obj)

    @admin.action(description="Rotate the invite code (the old one stops working)")
    def rotate_invite_code(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        rotated = 0
        for organization in queryset.order_by("pk"):
            services.organization_rotate_invite_code(organization=organization)
            rotated += 1
        self.message_user(request, f"Rotated the invite code of {rotated} organization(s).")


class MembershipForm(forms.ModelForm):
    role = forms.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields: list[str] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["role"].initial = self.instance.role.value

    def clean_role(self) -> Role:
        role = Role(self.cleaned_data["role"])
        target = self.instance
        # A friendly early answer; the service re-checks under the owners' row locks.
        if target.role == Role.OWNER and role != Role.OWNER:
            owners = Membership.objects.owners().filter(organization_id=target.organization_id)
            if owners.count() <= 1:
                raise forms.ValidationError("An organization must keep at least one owner.")
        return role


@admin.register(Membership)
class MembershipAdmin(ServiceModelAdmin):
    form = MembershipForm
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = [RoleFilter, "organization"]
    list_select_related = ["user", "organization", "group"]
    search_fields = ["user__username", "user__email", "organization__name"]
    fields = ["user", "organization", "role", "created_at"]
    readonly_fields = ["user", "organization", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Members join with the invite code; there is no service to add one by hand.
        return False

    @admin.display(description="role", ordering="group__name")
    def role(self, membership: Membership) -> str:
        return membership.role.label

    def save_model(self, request: HttpRequest, obj: Membership, form, change: bool) -> None:
        services.membership_change_role(
            target=obj, role=form.cleaned_data["role"], may_touch_owners=True
        )

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_remove(target=obj, may_touch_owners=True)


# Django's user admin, plus each user's organizations and roles (read-only there). Here,
# not in accounts: accounts sits below orgs and imports nothing of it.
class UserMembershipInline(ReadOnlyMembershipInline):
    """A user's organizations and roles."""

    related = "organization"
    verbose_name_plural = "organizations"


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class HypervisorUserAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, UserMembershipInline]
