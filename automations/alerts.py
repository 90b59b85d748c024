"""Failure alerts: a workflow's failed runs are told to its owner by email, or to its Slack
channel, with a link to each run.

The policy, decided here and nowhere else: a workflow's first failure is told at once (on
the next pass, at most a minute later); while an alert for that workflow was sent less
than KANRI_ALERT_DIGEST_MINUTES ago, further failures wait, and are then told together in
one digest. django-q2 runs `send_failure_alerts` every minute (migration 0009).

Never resent silently: the alert row and its runs are written before the message is sent
(one alert per run at most, a unique constraint), then closed as sent or not sent. An
alert left "sending" by a worker that died is marked "outcome unknown" and its runs are
not told again by Kanri itself: the run page shows it.
"""

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from automations.engine.commits import durable
from automations.models import AlertedRun, FailureAlert, Run
from automations.redaction import redact
from automations.timefmt import format_time

logger = logging.getLogger(__name__)

# A digest lists this many runs; a line says how many more there are.
DIGEST_SHOWN = 20
# An alert still "sending" after this long was cut off mid-send.
SEND_TIMEOUT = timedelta(minutes=5)


def run_url(run_id):
    """Return the absolute address of a run's page, for links in alerts."""
    path = reverse("admin:automations_run_change", args=[run_id])
    return settings.KANRI_BASE_URL.rstrip("/") + path


def _window():
    return timedelta(minutes=settings.KANRI_ALERT_DIGEST_MINUTES)


def _owner_prefs(workflow):
    owner = workflow.owner
    profile = getattr(owner, "kanri_profile", None) if owner else None
    language = getattr(profile, "language", "") or settings.LANGUAGE_CODE
    zone = getattr(profile, "time_zone", "") or settings.TIME_ZONE
    return language, ZoneInfo(zone)


def compose(workflow, runs, digest):
    """Return (subject, text) of an alert about `runs`, in the owner's language and zone."""
    language, zone = _owner_prefs(workflow)
    with translation.override(language):
        if digest:
            subject = ngettext(
                "Kanri: “%(workflow)s” failed %(count)d time",
                "Kanri: “%(workflow)s” failed %(count)d times",
                len(runs),
            ) % {"workflow": workflow.name, "count": len(runs)}
        else:
            subject = _("Kanri: “%(workflow)s” failed (run %(id)d)") % {
                "workflow": workflow.name,
                "id": runs[0].pk,
            }
        lines = []
        for run in runs[:DIGEST_SHOWN]:
            lines.append(
                _("Run %(id)d failed at %(when)s: %(error)s")
                % {
                    "id": run.pk,
                    "when": format_time(run.finished_at, zone),
                    "error": redact(run.error) or _("no error was recorded"),
                }
            )
            lines.append(run_url(run.pk))
        if len(runs) > DIGEST_SHOWN:
            more = len(runs) - DIGEST_SHOWN
            lines.append(
                ngettext("…and %(count)d more run.", "…and %(count)d more runs.", more)
                % {"count": more}
            )
        lines.append("")
        lines.append(
            _("You get this because you own “%(workflow)s” in Kanri.") % {"workflow": workflow.name}
        )
    return subject, "\n".join(lines)


def _recipient(workflow):
    if workflow.failure_alerts == "slack":
        return workflow.alert_channel.strip()
    return (workflow.owner.email if workflow.owner_id else "").strip()


def _send(workflow, recipient, subject, text):
    """Send one alert; raise on failure (the caller records what happened)."""
    if workflow.failure_alerts == "slack":
        from integrations.slack_actions import client, escape

        client().chat_postMessage(channel=recipient, text=escape(f"{subject}\n{text}"))
        return
    EmailMessage(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        connection=get_connection(fail_silently=False),
    ).send()


def _claim(workflow, runs, digest, now):
    """Write the alert and its runs before sending; return it, or None if another pass
    claimed any of these runs first."""
    try:
        # On disk before the message goes out (a worker's commits may otherwise wait).
        with transaction.atomic(), durable():
            alert = FailureAlert.objects.create(
                workflow=workflow,
                digest=digest,
                channel=workflow.failure_alerts,
                recipient=_recipient(workflow),
                created_at=now,
            )
            AlertedRun.objects.bulk_create([AlertedRun(alert=alert, run=run) for run in runs])
    except IntegrityError:
        return None
    return alert


def alert_workflow(workflow, now=None):
    """Tell `workflow`'s failed runs not told yet, if its policy says now; return the alert
    written (sent or not), or None."""
    now = now or timezone.now()
    if workflow.failure_alerts not in ("email", "slack"):
        return None
    last = workflow.alerts.order_by("-created_at").first()
    if last is not None and now - last.created_at < _window():
        return None  # the rest wait for the next digest
    runs = list(
        Run.objects.filter(
            workflow=workflow, status=Run.Status.FAILED, alerted__isnull=True, finished_at__lte=now
        ).order_by("finished_at", "pk")
    )
    if not runs:
        return None
    alert = _claim(workflow, runs, digest=len(runs) > 1, now=now)
    if alert is None:
        return None
    if not alert.recipient:
        FailureAlert.objects.filter(pk=alert.pk).update(status=FailureAlert.Status.NO_RECIPIENT)
        return FailureAlert.objects.get(pk=alert.pk)
    subject, text = compose(workflow, runs, alert.digest)
    try:
        _send(workflow, alert.recipient, subject, text)
    except Exception as e:  # recorded, shown, and not retried by itself
        logger.warning("Failure alert %s for workflow %s not sent", alert.pk, workflow.pk)
        FailureAlert.objects.filter(pk=alert.pk).update(
            status=FailureAlert.Status.FAILED, error=redact(f"{type(e).__name__}: {e}")[:2000]
        )
    else:
        FailureAlert.objects.filter(pk=alert.pk).update(
            status=FailureAlert.Status.SENT, sent_at=timezone.now()
        )
    return FailureAlert.objects.get(pk=alert.pk)


def send_failure_alerts(now=None):
    """Tell every workflow's owner of failed runs not told yet (the every-minute task);
    return how many alerts were written."""
    now = now or timezone.now()
    FailureAlert.objects.filter(
        status=FailureAlert.Status.SENDING, created_at__lt=now - SEND_TIMEOUT
    ).update(status=FailureAlert.Status.UNKNOWN)
    workflow_ids = (
        Run.objects.filter(status=Run.Status.FAILED, alerted__isnull=True, finished_at__lte=now)
        .values_list("workflow_id", flat=True)
        .distinct()
    )
    from automations.models import Workflow

    written = 0
    for workflow in Workflow.objects.filter(pk__in=list(workflow_ids)).select_related("owner"):
        written += alert_workflow(workflow, now) is not None
    return written


def alert_of(run):
    """Return what the run page says of a failed run's alert: {status, label, when, channel,
    recipient, digest}, or None when none was written."""
    link = AlertedRun.objects.filter(run=run).select_related("alert").first()
    if link is None:
        return None
    alert = link.alert
    return {
        "status": alert.status,
        "label": str(alert.get_status_display()),
        "when": alert.sent_at or alert.created_at,
        "channel": alert.channel,
        "recipient": alert.recipient,
        "digest": alert.digest,
        "error": alert.error,
    }
