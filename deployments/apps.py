from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"

    def ready(self) -> None:
        from clusters.selectors import CLUSTER_COUNTS
        from clusters.services import ACTIVE_WORK, FRACTIONAL_CPU_WORK
        from deployments.selectors import active_work, cluster_counts, fractional_cpu_work

        CLUSTER_COUNTS.update(cluster_counts())
        ACTIVE_WORK.append(active_work)
        FRACTIONAL_CPU_WORK.append(fractional_cpu_work)
