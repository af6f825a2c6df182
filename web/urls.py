"""The pages, under the `web` namespace at the site's root."""

from django.contrib.auth import views as auth_views
from django.urls import path, register_converter

from deployments.services import Action
from hypervisor.converters import IdConverter
from web import setup_views, views

app_name = "web"
register_converter(IdConverter, "id")

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<id:token_id>/revoke/", views.token_revoke_view, name="token-revoke"),
    path("signup/", setup_views.signup, name="signup"),
    path("orgs/new/", setup_views.organization_new, name="organization-new"),
    path("orgs/join/", setup_views.organization_join, name="organization-join"),
    path("orgs/<id:organization_id>/team/", setup_views.team, name="team"),
    path(
        "orgs/<id:organization_id>/invite-code/",
        setup_views.invite_code_rotate,
        name="invite-code-rotate",
    ),
    path(
        "orgs/<id:organization_id>/members/<id:user_id>/role/",
        setup_views.member_role,
        name="member-role",
    ),
    path(
        "orgs/<id:organization_id>/members/<id:user_id>/remove/",
        setup_views.member_remove,
        name="member-remove",
    ),
    path("orgs/<id:organization_id>/clusters/new/", setup_views.cluster_new, name="cluster-new"),
    path("clusters/<id:cluster_id>/edit/", setup_views.cluster_edit, name="cluster-edit"),
    path("orgs/<id:organization_id>/", views.dashboard, name="dashboard"),
    path("orgs/<id:organization_id>/live/", views.dashboard_live, name="dashboard-live"),
    path(
        "orgs/<id:organization_id>/deployments/",
        views.deployment_list,
        name="deployment-list",
    ),
    path(
        "orgs/<id:organization_id>/deployments/new/",
        views.deployment_new,
        name="deployment-new",
    ),
    path("deployments/<id:deployment_id>/", views.deployment_detail, name="deployment"),
    path("deployments/<id:deployment_id>/live/", views.deployment_live, name="deployment-live"),
    path(
        "deployments/<id:deployment_id>/logs/",
        views.deployment_logs_live,
        name="deployment-logs",
    ),
    *(
        path(
            f"deployments/<id:deployment_id>/{action.value}/",
            views.deployment_action,
            {"action": action},
            name=f"deployment-{action.value}",
        )
        for action in Action
    ),
]
