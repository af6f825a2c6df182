from hypervisor.routers import OptionalSlashRouter
from scheduler.api import views

router = OptionalSlashRouter()
router.register("clusters", views.ClusterQueueViewSet, basename="cluster-queue")
urlpatterns = router.urls
