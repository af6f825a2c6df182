from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"

    def ready(self) -> None:
        from clusters.services import organization_clusters_ensure_idle
        from orgs.services import DELETE_GUARDS

        DELETE_GUARDS.append(organization_clusters_ensure_idle)
