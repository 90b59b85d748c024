"""Trigger events: the event a trigger carries stored once, shared by all the runs it starts
(issue 13: a run row no longer carries the whole event). Older runs keep `trigger_data`."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0010_run_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="TriggerEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=300, unique=True, verbose_name="key")),
                (
                    "data",
                    models.JSONField(
                        help_text="The trigger's data as received.", verbose_name="data"
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="created at"
                    ),
                ),
            ],
            options={
                "verbose_name": "trigger event",
                "verbose_name_plural": "trigger events",
            },
        ),
        migrations.AlterField(
            model_name="run",
            name="trigger_data",
            field=models.JSONField(
                blank=True,
                help_text="The trigger's data as received, for runs from before trigger events.",
                null=True,
                verbose_name="trigger data",
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="event",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="runs",
                to="automations.triggerevent",
                verbose_name="event",
            ),
        ),
    ]
