from django.urls import re_path

from hypervisor.routers import OptionalSlashRouter
from orgs.api import views

router = OptionalSlashRouter()
router.register("organizations", views.OrganizationViewSet, basename="organization")

member = views.MemberViewSet.as_view({"patch": "partial_update", "delete": "destroy"})
urlpatterns = [
    re_path(
        r"^organizations/(?P<organization_pk>[0-9]{1,18})/members/(?P<user_id>[0-9]{1,18})/?$",
        member,
        name="organization-member",
    ),
    *router.urls,
]
