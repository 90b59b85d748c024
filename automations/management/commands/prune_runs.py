import re
from argparse import RawDescriptionHelpFormatter
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from automations import maintenance
from automations.management.progress import progress, summary

EXAMPLE = """examples:
  manage.py prune_runs
      delete succeeded and cancelled runs older than KANRI_RUN_RETENTION_DAYS ({days} days)
  manage.py prune_runs --older-than 90d --dry-run
      say how many runs would go, delete nothing
  manage.py prune_runs --older-than 2w --include-failed
      failed and held runs too (they are kept otherwise)
  manage.py prune_runs --older-than 12h --batch-size 500

A period is a number and a unit: h (hours), d (days), w (weeks). Queued, running and
retrying runs are never deleted. A run's steps and approvals go with it; a bulk request
keeps its list of items. The daily schedule does the same with the default period.
"""
UNITS = {"h": "hours", "d": "days", "w": "weeks"}


class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    pass


def parse_period(value):
    """Return the timedelta of "90d", "12h" or "2w"."""
    match = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", value or "", re.IGNORECASE)
    if not match or int(match[1]) == 0:
        raise CommandError(
            _(
                "--older-than %(value)r is not a period: use a number and h, d or w, "
                "such as 90d, 12h or 2w."
            )
            % {"value": value}
        )
    return timedelta(**{UNITS[match[2].lower()]: int(match[1])})


class Command(BaseCommand):
    help = gettext_lazy(
        "Delete finished workflow runs older than a period, in batches; failed and held "
        "runs are kept unless --include-failed."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("epilog", EXAMPLE.format(days=settings.KANRI_RUN_RETENTION_DAYS))
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            default=None,
            metavar="PERIOD",
            help=gettext_lazy("Such as 90d, 12h or 2w (default: KANRI_RUN_RETENTION_DAYS days)."),
        )
        parser.add_argument(
            "--include-failed",
            action="store_true",
            help=gettext_lazy("Delete failed and held runs too."),
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help=gettext_lazy("Runs deleted per transaction."),
        )
        parser.add_argument(
            "--dry-run", action="store_true", help=gettext_lazy("Count the runs; delete nothing.")
        )

    def handle(self, *args, older_than, include_failed, batch_size, dry_run, **options):
        period = parse_period(older_than) if older_than is not None else None
        if batch_size < 1:
            raise CommandError(_("--batch-size must be at least 1."))
        if dry_run:
            result = maintenance.prune_runs(period, include_failed, batch_size, dry_run=True)
            summary(
                self,
                _("Dry run: %(count)d run(s) would be deleted; nothing was deleted.")
                % {"count": result["matched"]},
            )
            return
        # Counted first only for the bar's total: the deletion re-selects by age and status.
        total = maintenance.prune_runs(period, include_failed, dry_run=True)["matched"]
        with progress(self, _("Deleting runs"), total=total) as bar:
            result = maintenance.prune_runs(period, include_failed, batch_size, on_batch=bar.update)
        summary(self, _("Deleted %(count)d run(s).") % {"count": result["deleted"]})
