from argparse import RawDescriptionHelpFormatter
from collections import Counter
from datetime import UTC, datetime, time

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from automations.management.progress import progress, summary
from automations.models import SyncCursor
from integrations import stripe_sync

EXAMPLE = """examples:
  manage.py sync_stripe --types customer,charge --since 2026-11-01
      backfill customers and charges created since 1 November 2026 (UTC)
  manage.py sync_stripe --since 2026-11-01
      every supported type: {types}
  manage.py sync_stripe --types invoice --since 2026-11-01 --limit-per-type 500
      at most 500 invoices now; the next run goes on from there
  manage.py sync_stripe --types charge --since 2026-11-01 --restart
      list the charges again from the newest, even if a run already finished them

Each type keeps a cursor (the last object listed), saved after every page of 100: an
interrupted run resumes where it stopped, and a finished type with the same --since is
not listed again unless --restart. A Stripe 429 waits (Retry-After, else backoff) and
retries; any other error stops the command with exit status 1, the cursor kept.
"""


class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    pass


def parse_since(value):
    """Return an aware datetime from a date (midnight UTC) or an ISO date and time."""
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime.combine(day, time()) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(
            _("--since %(value)r is not a date (YYYY-MM-DD) or an ISO date and time.")
            % {"value": value}
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_types(value):
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in stripe_sync.TYPES]
    if unknown or not names:
        raise CommandError(
            _("Unknown type(s): %(unknown)s. Known types: %(known)s.")
            % {"unknown": ", ".join(unknown) or "''", "known": ", ".join(stripe_sync.TYPES)}
        )
    return [stripe_sync.object_type(name) for name in dict.fromkeys(names)]


class Command(BaseCommand):
    help = gettext_lazy(
        "Backfill Stripe objects of the given types, created since a date, into the "
        "dj-stripe mirror; resumable, and reporting objects created, updated and failed."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("epilog", EXAMPLE.format(types=", ".join(stripe_sync.TYPES)))
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--types",
            default=",".join(stripe_sync.TYPES),
            help=gettext_lazy("Comma-separated object types (default: all supported)."),
        )
        parser.add_argument(
            "--since",
            default=None,
            help=gettext_lazy(
                "Objects created from this date (UTC midnight) or ISO time on "
                "(default: all of them)."
            ),
        )
        parser.add_argument(
            "--restart",
            action="store_true",
            help=gettext_lazy("Forget the stored cursors and start over."),
        )
        parser.add_argument(
            "--limit-per-type",
            type=int,
            default=None,
            metavar="N",
            help=gettext_lazy("Sync at most N objects of each type in this run."),
        )

    def handle(self, *args, types, since, restart, limit_per_type, **options):
        kinds = parse_types(types)
        since = parse_since(since) if since else None
        if limit_per_type is not None and limit_per_type < 1:
            raise CommandError(_("--limit-per-type must be at least 1."))
        totals = Counter()
        try:
            for kind in kinds:
                self.sync_type(kind, since, restart, limit_per_type, totals)
        except stripe_sync.SyncError as e:
            summary(self, self.line(totals), failed=True)
            raise CommandError(
                _("Listing %(type)s failed: %(error)s. The cursor is kept: run again to resume.")
                % {"type": kind.name, "error": e}
            ) from e
        summary(self, self.line(totals), failed=bool(totals["failed"]))
        if totals["failed"]:
            raise CommandError(
                _(
                    "%(count)d object(s) failed to sync (listed above). The cursor has moved "
                    "past them: run again with --restart to retry them."
                )
                % {"count": totals["failed"]}
            )

    def line(self, totals):
        return _(
            "Synced %(total)d objects: %(created)d created, %(updated)d updated, %(failed)d failed"
        ) % {
            "total": totals["created"] + totals["updated"] + totals["failed"],
            "created": totals["created"],
            "updated": totals["updated"],
            "failed": totals["failed"],
        }

    def sync_type(self, kind, since, restart, limit, totals):
        cursor, _created = SyncCursor.objects.get_or_create(object_type=kind.name)
        if restart or cursor.since != since:
            cursor.since, cursor.last_id, cursor.complete = since, "", False
            cursor.created = cursor.updated = cursor.failed = 0
            cursor.save()
        elif cursor.complete:
            self.stdout.write(
                _("%(type)s: already synced (use --restart to list again)") % {"type": kind.name}
            )
            return
        elif cursor.last_id:
            self.stdout.write(
                _("%(type)s: resuming after %(id)s") % {"type": kind.name, "id": cursor.last_id}
            )
        counts = Counter()
        with progress(self, kind.name, total=limit) as bar:
            while limit is None or counts.total() < limit:
                size = stripe_sync.PAGE_SIZE
                if limit is not None:
                    size = min(size, limit - counts.total())
                page = stripe_sync.list_page(kind, since, cursor.last_id or None, size)
                page_counts = Counter()
                for data in page["data"]:
                    page_counts[self.sync_one(kind, data)] += 1
                    bar.update()
                totals.update(page_counts)
                # The cursor moves only once the whole page is written, so a run stopped
                # mid-page lists that page again (writing an object twice is harmless).
                if page["data"]:
                    cursor.last_id = page["data"][-1]["id"]
                cursor.complete = not (page["has_more"] and page["data"])
                cursor.created += page_counts["created"]
                cursor.updated += page_counts["updated"]
                cursor.failed += page_counts["failed"]
                cursor.save()
                counts.update(page_counts)
                if cursor.complete:
                    break
        self.stdout.write(
            _(
                "%(type)s: %(total)d listed (%(created)d created, %(updated)d updated, "
                "%(failed)d failed)%(done)s"
            )
            % {
                "type": kind.name,
                "total": counts.total(),
                "created": counts["created"],
                "updated": counts["updated"],
                "failed": counts["failed"],
                "done": "" if cursor.complete else _(", more to come"),
            }
        )

    def sync_one(self, kind, data):
        try:
            return stripe_sync.sync_object(kind, data)
        except Exception as e:
            # dj-stripe raises many kinds (Stripe errors fetching a relation, payload shapes
            # it cannot map, integrity errors); one object's failure must not stop the rest.
            self.stderr.write(
                _("%(type)s %(id)s failed: %(error)s")
                % {"type": kind.name, "id": data.get("id"), "error": describe(e)}
            )
            return "failed"


def describe(error, most=3):
    """Return "Type: message" of an error and of what it was raised from or during: dj-stripe
    often hides the cause (a relation it could not fetch) behind a later DoesNotExist."""
    seen = []
    while error is not None and len(seen) < most:
        text = f"{type(error).__name__}: {error}"
        if text not in seen:
            seen.append(text)
        error = error.__cause__ or error.__context__
    return " <- ".join(seen)
