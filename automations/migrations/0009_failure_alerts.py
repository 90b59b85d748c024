import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

SCHEDULE = "Send failure alerts"


def create_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SCHEDULE,
        defaults={
            "func": "automations.alerts.send_failure_alerts",
            "schedule_type": "I",  # every `minutes`
            "minutes": 1,
            "repeats": -1,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0008_user_profile"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflow",
            name="failure_alerts",
            field=models.CharField(
                choices=[("email", "Email the owner"), ("slack", "Post to Slack"), ("off", "Off")],
                default="email",
                max_length=10,
                verbose_name="failure alerts",
            ),
        ),
        migrations.AddField(
            model_name="workflow",
            name="alert_channel",
            field=models.CharField(
                blank=True,
                help_text="For alerts to Slack: the channel (#ops or C…).",
                max_length=80,
                verbose_name="alert Slack channel",
            ),
        ),
        migrations.CreateModel(
            name="FailureAlert",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("digest", models.BooleanField(default=False)),
                ("channel", models.CharField(max_length=10)),
                ("recipient", models.CharField(blank=True, max_length=254)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("sending", "Sending"),
                            ("sent", "Sent"),
                            ("failed", "Not sent"),
                            ("unknown", "Outcome unknown"),
                            ("no_recipient", "Nobody to tell"),
                        ],
                        default="sending",
                        max_length=12,
                    ),
                ),
                ("error", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                (
                    "workflow",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="alerts",
                        to="automations.workflow",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-pk"],
                "indexes": [
                    models.Index(
                        fields=["workflow", "-created_at"], name="automations_workflo_660896_idx"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="AlertedRun",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "alert",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="runs",
                        to="automations.failurealert",
                    ),
                ),
                (
                    "run",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="alerted",
                        to="automations.run",
                    ),
                ),
            ],
        ),
        migrations.RunPython(create_schedule, delete_schedule),
    ]
