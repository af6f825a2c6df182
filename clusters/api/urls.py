from clusters.api import views
from hypervisor.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("clusters", views.ClusterViewSet, basename="cluster")
urlpatterns = router.urls
