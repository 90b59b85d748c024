import csv
import time
from argparse import RawDescriptionHelpFormatter

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.utils.translation import gettext_lazy

from automations import store_credit, workflows
from automations.models import Batch, Run, Workflow

EXAMPLE = """example:
  manage.py store_credit --workflow "Refund as store credit" --csv charges.csv \\
      --report credited.csv --wait 120 --user hana

charges.csv has a `charge` column (or the ids in its first column):
  charge
  ch_3PqX...
  ch_3PqY...

The report has one line per charge: charge, customer, email, amount, currency, credit
type, credit id or code, expires_at, status (credited, skipped, failed, pending), error.
A charge is credited at most once: running the same file again credits nothing.
"""
# Runs still moving on their own; a held run waits for a person, so waiting stops there.
MOVING = (Run.Status.QUEUED, Run.Status.RUNNING, Run.Status.RETRYING)


class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    pass


def read_ids(path):
    """Return the charge ids of a CSV file: its `charge` column, or its first column."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    if "charge" in header:
        column = header.index("charge")
        rows = rows[1:]
    else:
        column = 0
        if not rows[0][0].strip().startswith(("ch_", "py_")):
            rows = rows[1:]  # a header naming the column something else
    return [row[column].strip() for row in rows if len(row) > column and row[column].strip()]


class Command(BaseCommand):
    help = gettext_lazy(
        "Refund the charges listed in a CSV file as store credit, through a store-credit "
        "workflow (each charge once), and write the report as CSV."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("epilog", EXAMPLE)
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--workflow", required=True, help=gettext_lazy("The workflow's id or name.")
        )
        parser.add_argument(
            "--csv", required=True, dest="ids_csv", help=gettext_lazy("CSV of charge ids.")
        )
        parser.add_argument(
            "--report", required=True, help=gettext_lazy("Where to write the report (CSV).")
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help=gettext_lazy(
                "Wait up to this long for the runs to finish before writing the report."
            ),
        )
        parser.add_argument(
            "--user",
            default=None,
            help=gettext_lazy("Username to record as having started the runs."),
        )

    def handle(self, *args, workflow, ids_csv, report, wait, user, **options):
        chosen = self.workflow(workflow)
        person = None
        if user:
            person = get_user_model().objects.filter(username=user).first()
            if person is None:
                raise CommandError(f"No user {user!r}.")
        try:
            ids = read_ids(ids_csv)
        except OSError as e:
            raise CommandError(f"Cannot read {ids_csv}: {e}") from e
        if not ids:
            raise CommandError(f"{ids_csv} lists no charges.")
        try:
            result = workflows.run_on(chosen, ids, person)
        except workflows.NotAllowed as e:
            raise CommandError(e.message) from e
        batch = Batch.objects.get(pk=result["batch"])
        self.wait_for(batch, wait)
        rows = store_credit.report(batch)
        with open(report, "w", newline="", encoding="utf-8") as out:
            store_credit.write_csv(rows, out)
        self.stdout.write(f"{store_credit.summary(rows)}; report written to {report}")
        failed = store_credit.counts(rows)["failed"]
        if failed:
            raise CommandError(f"{failed} charge(s) failed: see {report}.")

    def workflow(self, value):
        found = Workflow.objects.filter(pk=int(value)) if value.isdigit() else None
        if not found:
            found = Workflow.objects.filter(name=value)
        workflow = found.select_related("active_version").first()
        if workflow is None:
            raise CommandError(f"No workflow {value!r}.")
        if not workflow.active_version_id or not store_credit.credit_steps(
            workflow.active_version.definition
        ):
            raise CommandError(f"“{workflow.name}” is not an active store-credit workflow.")
        return workflow

    def wait_for(self, batch, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not Run.objects.filter(batch=batch, status__in=MOVING).exists():
                return
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
