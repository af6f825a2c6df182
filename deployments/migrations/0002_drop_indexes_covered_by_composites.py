"""Drop three single-column foreign-key indexes that a composite index already covers
(its leading column): every insert paid for them, no query needs them.

Only the indexes go: Django's AlterField would also drop and re-add each foreign key,
which re-validates every row under an exclusive lock. `DROP INDEX IF EXISTS` is the
same statement on PostgreSQL and SQLite.
"""

import django.db.models.deletion
from django.db import migrations, models

# (table, column, the index 0001 created for it)
COVERED = [
    ("deployments_deployment", "cluster_id", "deployments_deployment_cluster_id_411c5741"),
    (
        "deployments_deploymentevent",
        "deployment_id",
        "deployments_deploymentevent_deployment_id_53ddd570",
    ),
    ("deployments_dependency", "dependent_id", "deployments_dependency_dependent_id_2f831659"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0002_pack_is_the_default_policy"),
        ("deployments", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX "{index}" ON "{table}" ("{column}")',
                )
                for table, column, index in COVERED
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="dependency",
                    name="dependent",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="dependency_links",
                        to="deployments.deployment",
                    ),
                ),
                migrations.AlterField(
                    model_name="deployment",
                    name="cluster",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deployments",
                        to="clusters.cluster",
                    ),
                ),
                migrations.AlterField(
                    model_name="deploymentevent",
                    name="deployment",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="deployments.deployment",
                    ),
                ),
            ],
        )
    ]
