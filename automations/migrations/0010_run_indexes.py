"""Indexes for the run list at a million runs: its ordering, its filters, the inventory;
and on PostgreSQL, the run's and step's JSON kept out of line.

On PostgreSQL the indexes are built CONCURRENTLY (no lock on a busy run table), which
needs a migration outside a transaction; elsewhere they are plain CREATE INDEX.

toast_tuple_target = 128: PostgreSQL keeps a row's values inline up to ~2 KB, so a run's
event (~1.5 KB compressed) was copied into every new row version: a run is updated 3 to 4
times (queued, running, succeeded), a step twice. Moved to TOAST at once, the JSON is
written once and each update copies only a pointer.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

INDEXES = [
    models.Index(fields=["-created_at", "-id"], name="run_list_order"),
    models.Index(fields=["status", "-created_at", "-id"], name="run_list_status"),
    models.Index(fields=["event_type", "-created_at", "-id"], name="run_list_event"),
    models.Index(
        fields=["hold_reason", "-created_at", "-id"],
        name="run_list_held",
        condition=~models.Q(hold_reason=""),
    ),
    models.Index(
        fields=["trigger_kind", "-created_at", "-id"],
        name="run_list_kind",
        condition=~models.Q(trigger_kind="stripe_event"),
    ),
    models.Index(fields=["workflow", "status", "created_at"], name="run_inventory"),
]


class AddRunIndex(AddIndexConcurrently):
    """CONCURRENTLY on PostgreSQL, a plain AddIndex on any other database."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )


TABLES = ("automations_run", "automations_runstep")


def toast_early(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} SET (toast_tuple_target = 128)")


def toast_default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} RESET (toast_tuple_target)")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("automations", "0009_failure_alerts"),
    ]

    operations = [
        *(AddRunIndex(model_name="run", index=index) for index in INDEXES),
        migrations.RunPython(toast_early, toast_default, elidable=False),
    ]
