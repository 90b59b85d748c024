from datetime import timedelta

from django.db import connection, models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations.connections import Connection  # noqa: F401  (Slack's token, set in the admin)


class SyncMark(models.Model):
    """A named "this background job is queued" mark, shared by every process.

    Claiming is one conditional UPDATE, so among many web processes exactly one queues
    the job; the mark lapses by itself if the job is lost with a worker.
    """

    name = models.CharField(max_length=50, primary_key=True)
    held_until = models.DateTimeField()

    def __str__(self):
        return self.name

    @classmethod
    def claim(cls, name, seconds):
        """Return True if this caller took the mark (it was free or had lapsed).

        One statement (an upsert that updates only a lapsed mark), so the many webhook
        requests that find it held pay one round trip; none logs a unique violation.
        """
        now = timezone.now()
        adapt = connection.ops.adapt_datetimefield_value
        table = connection.ops.quote_name(cls._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (name, held_until) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET held_until = excluded.held_until "
                f"WHERE {table}.held_until < %s RETURNING name",
                [name, adapt(now + timedelta(seconds=seconds)), adapt(now)],
            )
            return cursor.fetchone() is not None

    @classmethod
    def release(cls, name):
        cls.objects.filter(name=name).update(held_until=timezone.now() - timedelta(seconds=1))


class SyncQueue(models.Model):
    """A verified delivery still to be synced into the mirror: the mirror's to-do list.

    A row per delivery that is new or waiting for a retry, deleted once the delivery is
    synced or given up on, so the pending-work lookup reads a small index (`due`) instead
    of walking every delivery Stripe ever sent.
    """

    # The WebhookEventTrigger's id; no foreign key, so queueing a delivery is one cheap
    # INSERT, and a delivery pruned meanwhile is simply dropped by the next batch.
    delivery_id = models.BigIntegerField(primary_key=True)
    due = models.DateTimeField(db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    def __str__(self):
        return str(self.delivery_id)


class AppliedEvent(models.Model):
    """The newest event applied to each mirrored Stripe object (the ordering guard).

    Stripe does not deliver events in order; an event older than the one recorded here
    (by `created`, then event id) never overwrites the object's newer state.
    """

    object_id = models.CharField(max_length=255, primary_key=True)
    created = models.DateTimeField()
    event_id = models.CharField(max_length=255)

    def __str__(self):
        return f"{self.object_id} ← {self.event_id}"

    def key(self):
        return (self.created, self.event_id)


class SyncProblem(models.Model):
    """A delivery the mirror could not sync, with how it failed (for the admin).

    Stored as codes and Stripe's or dj-stripe's own message, never Kanri's English, so
    the admin says it in the reader's language.
    """

    class Kind(models.TextChoices):
        PERMANENT = "permanent", _("Permanent: not retried")
        TRANSIENT = "transient", _("Transient: retried with backoff")

    class Code(models.TextChoices):
        RESOURCE_MISSING = "resource_missing", _("The object no longer exists at Stripe")
        UNMAPPABLE = "unmappable", _("A payload shape dj-stripe cannot map")
        STRIPE_REFUSED = "stripe_refused", _("Stripe refused the request")
        RATE_LIMITED = "rate_limited", _("Stripe's rate limit")
        STRIPE_UNAVAILABLE = "stripe_unavailable", _("Stripe unavailable or unreachable")
        DATABASE = "database", _("Database error")
        GAVE_UP = "gave_up", _("Given up after Stripe's 3-day redelivery window")

    delivery = models.OneToOneField(
        "djstripe.WebhookEventTrigger",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="kanri_sync_problem",
        verbose_name=_("delivery"),
    )
    event_id = models.CharField(_("event"), max_length=255, blank=True)
    event_type = models.CharField(_("event type"), max_length=255, blank=True, db_index=True)
    object_id = models.CharField(_("object"), max_length=255, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, db_index=True)
    code = models.CharField(_("problem"), max_length=32, choices=Code.choices)
    detail = models.TextField(_("detail"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=1)
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)
    last_tried = models.DateTimeField(_("last tried"), default=timezone.now)
    next_try = models.DateTimeField(_("next try"), null=True, blank=True)

    class Meta:
        verbose_name = _("sync problem")
        verbose_name_plural = _("sync problems")
        ordering = ["-last_tried"]

    def __str__(self):
        return f"{self.event_id or self.delivery_id}: {self.code}"
