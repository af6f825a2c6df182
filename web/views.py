"""The pages. Thin: reads through `web.selectors`, writes through the services.

Permissions are the API's: a page about another tenant's object is 404, an action
the role does not allow is 403 (`web.selectors.Access`).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.logins import LoginRefused
from accounts.models import ApiToken
from accounts.selectors import token_list
from accounts.services import token_create, token_revoke
from clusters.selectors import cluster_list
from deployments import services
from deployments.models import Deployment
from deployments.selectors import deployment_logs
from deployments.services import Action, InvalidTransition
from orgs.selectors import organization_list
from web import selectors
from web.forms import DEFAULT_SORT, DeploymentForm, DeploymentListForm, TokenForm
from web.sessions import login_required_keeping_form, stashed_form_data

# The deployments table's columns: (heading, the ordering field it sorts by, or None).
LIST_COLUMNS = [
    ("Deployment", "name"),
    ("Cluster", "cluster"),
    ("Status", "status"),
    ("Priority", "priority"),
    ("Requests", None),
    ("Submitted by", None),
    ("Submitted", "created_at"),
]

LOG_LINES_SHOWN = 200


class LoginView(auth_views.LoginView):
    """Django's login (CSRF-protected). The password check applies the login limits
    (`accounts.logins`): once used up, 429 without a word about the password."""

    template_name = "web/login.html"
    redirect_authenticated_user = True

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "label_suffix": ""}

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return super().post(request, *args, **kwargs)
        except LoginRefused as refused:
            wait = int(refused.wait)
            form = self.get_form_class()(request, label_suffix="")  # unbound: no errors
            context = self.get_context_data(form=form, retry_after=wait)
            response = render(request, self.template_name, context, status=429)
            response["Retry-After"] = str(wait)
            return response


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = selectors.memberships_of(user=request.user)
    return render(request, "web/home.html", {"memberships": memberships})


def _dashboard(request: HttpRequest, organization_id: int) -> selectors.Dashboard:
    dashboard = selectors.dashboard_get(user=request.user, organization_id=organization_id)
    if dashboard is None:
        raise Http404("No such organization.")
    return dashboard


@require_GET
@login_required
def dashboard(request: HttpRequest, organization_id: int) -> HttpResponse:
    context = {"dashboard": _dashboard(request, organization_id)}
    return render(request, "web/dashboard.html", context)


@never_cache
@require_GET
@login_required
def dashboard_live(request: HttpRequest, organization_id: int) -> HttpResponse:
    context = {"dashboard": _dashboard(request, organization_id)}
    return render(request, "web/_dashboard_live.html", context)


def _deployment_page(request: HttpRequest, deployment_id: int) -> selectors.DeploymentPage:
    page = selectors.deployment_page_get(user=request.user, deployment_id=deployment_id)
    if page is None:
        raise Http404("No such deployment.")
    return page


@require_GET
@login_required
def deployment_detail(request: HttpRequest, deployment_id: int) -> HttpResponse:
    page = _deployment_page(request, deployment_id)
    logs = deployment_logs(deployment=page.deployment, tail=LOG_LINES_SHOWN)
    return render(request, "web/deployment.html", {"page": page, "logs": logs})


@never_cache
@require_GET
@login_required
def deployment_live(request: HttpRequest, deployment_id: int) -> HttpResponse:
    context = {"page": _deployment_page(request, deployment_id)}
    return render(request, "web/_deployment_live.html", context)


@never_cache
@require_GET
@login_required
def deployment_logs_live(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """The workload's last lines, refreshed by live.js while the page is open."""
    found = selectors.deployment_access_get(user=request.user, deployment_id=deployment_id)
    if found is None:
        raise Http404("No such deployment.")
    deployment, _access = found
    logs = deployment_logs(deployment=deployment, tail=LOG_LINES_SHOWN)
    return render(request, "web/_deployment_logs.html", {"logs": logs})


@require_http_methods(["GET", "POST"])
@login_required
def deployment_action(request: HttpRequest, deployment_id: int, action: Action) -> HttpResponse:
    """POST acts; GET asks first (the page's Cancel and Fail buttons lead here)."""
    found = selectors.deployment_access_get(user=request.user, deployment_id=deployment_id)
    if found is None:
        raise Http404("No such deployment.")
    deployment, access = found
    if not access.may_act_on(deployment, request.user):
        raise PermissionDenied("Your role in this organization does not allow this action.")
    if request.method == "GET":
        context = {"deployment": deployment, "action": action}
        return render(request, "web/deployment_confirm.html", context)
    try:
        deployment = services.deployment_act(
            actor=request.user, deployment_id=deployment_id, action=action
        )
    except (InvalidTransition, Deployment.DoesNotExist) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Deployment {deployment.pk} is {deployment.status}.")
    return redirect("web:deployment", deployment_id=deployment_id)


@require_http_methods(["GET", "POST"])
@login_required_keeping_form
def deployment_new(request: HttpRequest, organization_id: int) -> HttpResponse:
    access = selectors.access_get(user=request.user, organization_id=organization_id)
    if access is None:
        raise Http404("No such organization.")
    if not access.may_submit:
        raise PermissionDenied("Your role in this organization does not allow submitting.")
    organization = organization_list(user=request.user).get(pk=organization_id)
    clusters = cluster_list(user=request.user, organization_id=organization_id)
    initial = {"cluster": request.GET.get("cluster")} if request.GET.get("cluster") else {}
    stashed = stashed_form_data(request)  # typed before a sign-out
    if stashed is not None:
        initial = {**stashed.dict(), "preemptible": "preemptible" in stashed}
    data = request.POST if request.method == "POST" else None
    form = DeploymentForm(data, clusters=clusters, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            deployment = services.deployment_create(
                actor=request.user, cluster=form.cleaned_data["cluster"], spec=form.spec()
            )
        except ValidationError as error:
            form.attach_service_errors(error)
        else:
            messages.success(request, f"Submitted deployment {deployment.pk}.")
            return redirect("web:deployment", deployment_id=deployment.pk)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "organization": organization, "access": access}
    return render(request, "web/deployment_new.html", context, status=status)


def _sortable_columns(request: HttpRequest, current: str) -> list[dict]:
    """Each column's heading, with a link that sorts by it (again: the other way) and its
    `aria-sort` when the list is sorted by it."""
    columns = []
    for heading, field in LIST_COLUMNS:
        column = {"heading": heading, "url": None, "aria_sort": None}
        if field is not None:
            query = request.GET.copy()
            query.pop("page", None)
            query["ordering"] = f"-{field}" if current == field else field
            column["url"] = f"?{query.urlencode()}"
            if current.removeprefix("-") == field:
                column["aria_sort"] = "descending" if current.startswith("-") else "ascending"
        columns.append(column)
    return columns


@require_GET
@login_required
def deployment_list(request: HttpRequest, organization_id: int) -> HttpResponse:
    access = selectors.access_get(user=request.user, organization_id=organization_id)
    if access is None:
        raise Http404("No such organization.")
    organization = organization_list(user=request.user).get(pk=organization_id)
    form = DeploymentListForm(
        request.GET,
        clusters=cluster_list(user=request.user, organization_id=organization_id),
        members=selectors.members_of(user=request.user, organization_id=organization_id),
    )
    page = None
    if form.is_valid():
        page = selectors.deployments_page_get(
            user=request.user,
            page=request.GET.get("page"),
            **form.criteria(organization_id=organization_id),
        )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "organization": organization,
        "access": access,
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "columns": _sortable_columns(request, request.GET.get("ordering") or DEFAULT_SORT),
    }
    return render(request, "web/deployments.html", context, status=400 if page is None else 200)


@never_cache  # the answer to a creation holds the token's secret
@require_http_methods(["GET", "POST"])
@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """The caller's API tokens: create one (its secret shown in this answer only), list,
    revoke."""
    form = TokenForm(request.POST if request.method == "POST" else None)
    created = secret = None
    if request.method == "POST" and form.is_valid():
        try:
            created, secret = token_create(user=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            form = TokenForm()
    status = 400 if form.errors else (201 if created else 200)
    context = {
        "form": form,
        "tokens": token_list(user=request.user),
        "created": created,
        "secret": secret,
        "now": timezone.now(),
    }
    return render(request, "web/tokens.html", context, status=status)


@require_POST
@login_required
def token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token_revoke(user=request.user, token_id=token_id)
    except ApiToken.DoesNotExist:
        raise Http404("No such token.") from None
    messages.success(request, "Token revoked: it no longer works.")
    return redirect("web:tokens")
