from argparse import RawDescriptionHelpFormatter

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.utils.translation import gettext_lazy

from automations import maintenance, replays
from automations.management.progress import progress, summary

EXAMPLE = """examples:
  manage.py reconcile_events
      the last 24 hours (the hourly schedule does the same)
  manage.py reconcile_events --since 3d --dry-run
      list what is missing without recording or running anything

Lists Stripe's events for the period (GET /v1/events) and compares them with the
deliveries Kanri received. A webhook that answered 200 is no proof that the work ran:
each missing event is recorded as a verified delivery and run through the live entry,
once. Running it again does nothing: the events are no longer missing, and a run is
keyed by its event id. Events of the last few minutes are left to the next run, as
their delivery may still be on its way. Each run leaves a report in the admin
(Event reconciliations); --dry-run leaves none.
"""


class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    pass


class Command(BaseCommand):
    help = gettext_lazy(
        "Find the Stripe events Kanri never received, record them and run them once."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("epilog", EXAMPLE)
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--since",
            default="24h",
            help=gettext_lazy("Events created from then (24h, 3d, ISO date)."),
        )
        parser.add_argument(
            "--until", help=gettext_lazy("Events created up to then (default: a moment ago).")
        )
        parser.add_argument(
            "--dry-run", action="store_true", help=gettext_lazy("Only list the missing events.")
        )

    def handle(self, *args, since, until, dry_run, **options):
        try:
            since = replays.parse_moment(since)
            until = replays.parse_moment(until) if until else None
        except ValueError as e:
            raise CommandError(str(e)) from e
        with progress(self, "Recording missing events") as bar:
            result = maintenance.reconcile_events(
                since=since, until=until, dry_run=dry_run, tick=bar.update
            )
        if result["error"] and not result["failed"]:
            raise CommandError(f"Listing Stripe's events failed: {result['error']}")
        for event_id in result["missing"]:
            self.stdout.write(f"missing: {event_id}")
        for event_id, error in result["failed"]:
            self.stderr.write(f"{event_id}: {error}")
        text = (
            f"Stripe listed {result['listed']} event(s) since {result['since']:%Y-%m-%d %H:%M %Z}; "
            f"{len(result['missing'])} missing"
        )
        if dry_run:
            summary(self, f"{text}; dry run: nothing recorded.")
            return
        text += f", {len(result['missing']) - len(result['failed'])} recorded, "
        text += f"{result['replayed']} run(s) started (report {result['id']})"
        if result["failed"]:
            summary(self, f"{text}; {len(result['failed'])} failed.", failed=True)
            raise SystemExit(1)
        summary(self, text + ".")
