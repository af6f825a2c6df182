from deployments.api import views
from hypervisor.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("deployments", views.DeploymentViewSet, basename="deployment")
urlpatterns = router.urls
