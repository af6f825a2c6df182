"""The team's set-up pages: sign up, create or join an organization, its Team page
(invite code, members and their roles, clusters), and the cluster forms.

Thin, like `web.views`: forms check shape, the services decide (the same calls as the
API's), and the roles matrix is `orgs.selectors.member_*_allowed` (the member services
check it again under their locks) and the role's
permissions (`web.selectors.Access`). Another tenant's organization is 404.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from accounts.services import user_register
from clusters import services as cluster_services
from clusters.models import Cluster
from clusters.selectors import cluster_list
from hypervisor.exceptions import Conflict
from hypervisor.ratelimits import retry_after_seconds
from orgs import services as org_services
from orgs.models import Membership, Role
from orgs.selectors import (
    member_removal_allowed,
    member_role_change_allowed,
    membership_list,
    organization_list,
)
from planner import Policy
from web import selectors
from web.sessions import login_required_keeping_form, stashed_form_data
from web.setup_forms import ClusterForm, JoinForm, OrganizationForm, RoleForm, SignUpForm

GET_POST = require_http_methods(["GET", "POST"])
ROLE_REFUSED = "Your role in this organization does not allow this action."


def _form_data(request: HttpRequest) -> dict | None:
    return request.POST if request.method == "POST" else None


def _initial(request: HttpRequest, form_class: type, initial: dict | None = None) -> dict:
    """What a new form shows: `initial`, or what was typed before a sign-out."""
    stashed = stashed_form_data(request)
    if stashed is None:
        return initial or {}
    return {name: stashed.get(name, "") for name in form_class.base_fields}


def _render_form(
    request: HttpRequest, template: str, context: dict, *, failed: bool
) -> HttpResponse:
    return render(request, template, context, status=400 if failed else 200)


def _simple_form_page(
    request: HttpRequest, form, *, heading: str, intro: str, button: str
) -> HttpResponse:
    context = {"form": form, "heading": heading, "intro": intro, "button": button}
    return _render_form(request, "web/simple_form.html", context, failed=form.is_bound)


def _limited(request: HttpRequest, *, group: str, key: str, rate: str) -> int:
    """Seconds to wait when the API's rate limit for this action is used up, else 0."""
    if is_ratelimited(request, group=group, key=key, rate=rate, increment=True):
        return retry_after_seconds(rate)
    return 0


@GET_POST
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("web:home")
    form = SignUpForm(_form_data(request))
    if request.method == "POST" and form.is_valid():
        wait = _limited(request, group="register", key="ip", rate=settings.RATELIMIT_REGISTER_IP)
        if wait:
            form.add_error(None, f"Too many sign-ups from here. Try again in {wait} seconds.")
        else:
            try:
                user = user_register(**form.cleaned_data)
            except ValidationError as error:
                form.attach_errors(error)
            else:
                login(request, user)  # the one configured backend
                messages.success(request, f"Welcome, {user.get_username()}. You are signed in.")
                return redirect("web:home")
    return _render_form(request, "web/signup.html", {"form": form}, failed=form.is_bound)


@GET_POST
@login_required_keeping_form
def organization_new(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(_form_data(request), initial=_initial(request, OrganizationForm))
    if request.method == "POST" and form.is_valid():
        organization = org_services.organization_create(
            actor=request.user, name=form.cleaned_data["name"]
        )
        messages.success(request, f"Created {organization.name}; you are its owner.")
        return redirect("web:team", organization_id=organization.pk)
    return _simple_form_page(
        request,
        form,
        heading="Create an organization",
        intro="You become its owner, and can invite your team with its invite code.",
        button="Create",
    )


@GET_POST
@login_required_keeping_form
def organization_join(request: HttpRequest) -> HttpResponse:
    form = JoinForm(_form_data(request), initial=_initial(request, JoinForm))
    if request.method == "POST" and form.is_valid():
        wait = _limited(request, group="join", key="user", rate=settings.RATELIMIT_JOIN_USER)
        if wait:
            form.add_error(None, f"Too many attempts. Try again in {wait} seconds.")
        else:
            try:
                membership = org_services.organization_join(
                    actor=request.user, invite_code=form.cleaned_data["invite_code"].strip()
                )
            except ValidationError as error:
                form.attach_errors(error)
            else:
                name, role = membership.organization.name, membership.role.label.lower()
                messages.success(request, f"You are a member of {name}, as {role}.")
                return redirect("web:dashboard", organization_id=membership.organization_id)
    return _simple_form_page(
        request,
        form,
        heading="Join an organization",
        intro="You join as a developer; an owner or admin can change your role.",
        button="Join",
    )


def _access(request: HttpRequest, organization_id: int) -> selectors.Access:
    access = selectors.access_get(user=request.user, organization_id=organization_id)
    if access is None:
        raise Http404("No such organization.")
    return access


def _require(access: selectors.Access, permission: str, reason: str) -> None:
    if permission not in access.permissions:
        raise PermissionDenied(reason)


@require_http_methods(["GET"])
@login_required
def team(request: HttpRequest, organization_id: int) -> HttpResponse:
    access = _access(request, organization_id)
    organization = organization_list(user=request.user).get(pk=organization_id)
    members = list(membership_list(user=request.user, organization_id=organization_id))
    rows = [
        (member, selectors.member_actions(access=access, actor=request.user, target=member))
        for member in members
    ]
    context = {
        "organization": organization,
        "access": access,
        "rows": rows,
        "clusters": cluster_list(user=request.user, organization_id=organization_id),
    }
    return render(request, "web/team.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def invite_code_rotate(request: HttpRequest, organization_id: int) -> HttpResponse:
    access = _access(request, organization_id)
    if request.method == "POST":
        _require(access, "orgs.manage_invite_code", "Only owners and admins rotate the code.")
        organization = organization_list(user=request.user).get(pk=organization_id)
        org_services.organization_rotate_invite_code(organization=organization)
        messages.success(request, "A new invite code is ready; the old one no longer works.")
    return redirect("web:team", organization_id=organization_id)


def _member(request: HttpRequest, organization_id: int, user_id: int) -> Membership:
    members = membership_list(user=request.user, organization_id=organization_id)
    return get_object_or_404(members, user_id=user_id)


@require_http_methods(["GET", "POST"])
@login_required
def member_role(request: HttpRequest, organization_id: int, user_id: int) -> HttpResponse:
    access = _access(request, organization_id)
    target = _member(request, organization_id, user_id)
    form = RoleForm(_form_data(request))
    if request.method == "POST" and form.is_valid():
        role = Role(form.cleaned_data["role"])
        if not member_role_change_allowed(permissions=access.permissions, target=target, role=role):
            raise PermissionDenied(ROLE_REFUSED)
        try:
            # The service checks the caller's role again, under the row locks.
            org_services.membership_change_role(target=target, role=role, actor=request.user)
        except Conflict as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{target.user.get_username()} is now {role.label.lower()}.")
    return redirect("web:team", organization_id=organization_id)


@require_http_methods(["GET", "POST"])
@login_required
def member_remove(request: HttpRequest, organization_id: int, user_id: int) -> HttpResponse:
    access = _access(request, organization_id)
    target = _member(request, organization_id, user_id)
    if not member_removal_allowed(
        permissions=access.permissions, actor=request.user, target=target
    ):
        raise PermissionDenied(ROLE_REFUSED)
    leaving = target.user_id == request.user.pk
    if request.method == "GET":
        context = {"organization": target.organization, "target": target, "leaving": leaving}
        return render(request, "web/member_remove.html", context)
    try:
        org_services.membership_remove(target=target, actor=request.user)
    except Conflict as error:
        messages.error(request, error.message)
        return redirect("web:team", organization_id=organization_id)
    if leaving:
        messages.success(request, f"You left {target.organization.name}.")
        return redirect("web:home")
    messages.success(request, f"Removed {target.user.get_username()}.")
    return redirect("web:team", organization_id=organization_id)


def _cluster_form_page(
    request: HttpRequest, *, organization, cluster: Cluster | None
) -> HttpResponse:
    initial = ClusterForm.initial_for(cluster) if cluster else {}
    form = ClusterForm(_form_data(request), initial=_initial(request, ClusterForm, initial))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            cluster = _cluster_save(
                organization=organization, cluster=cluster, data=data, form=form
            )
        except ValidationError as error:
            form.attach_errors(error)
        except Conflict as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Saved cluster {cluster.name}.")
            return redirect("web:team", organization_id=organization.pk)
    context = {"form": form, "organization": organization, "cluster": cluster}
    return _render_form(request, "web/cluster_form.html", context, failed=form.is_bound)


def _cluster_save(*, organization, cluster: Cluster | None, data: dict, form: ClusterForm):
    if cluster is None:
        return cluster_services.cluster_create(
            organization=organization,
            name=data["name"],
            capacity=form.resources(),
            policy=Policy(data["policy"]),
            starvation_after_seconds=data["starvation_after_seconds"],
        )
    changes = cluster_services.ClusterChanges(
        name=data["name"],
        capacity=form.resources(),
        policy=Policy(data["policy"]),
        starvation_after_seconds=data["starvation_after_seconds"],
        starvation_set=True,
    )
    return cluster_services.cluster_update(cluster_id=cluster.pk, changes=changes)


@GET_POST
@login_required_keeping_form
def cluster_new(request: HttpRequest, organization_id: int) -> HttpResponse:
    access = _access(request, organization_id)
    _require(access, "clusters.add_cluster", "Only owners and admins create clusters.")
    organization = organization_list(user=request.user).get(pk=organization_id)
    return _cluster_form_page(request, organization=organization, cluster=None)


@GET_POST
@login_required_keeping_form
def cluster_edit(request: HttpRequest, cluster_id: int) -> HttpResponse:
    cluster = cluster_list(user=request.user).filter(pk=cluster_id).first()
    if cluster is None:
        raise Http404("No such cluster.")
    access = _access(request, cluster.organization_id)
    _require(access, "clusters.change_cluster", "Only owners and admins change clusters.")
    organization = cluster.organization
    return _cluster_form_page(request, organization=organization, cluster=cluster)
