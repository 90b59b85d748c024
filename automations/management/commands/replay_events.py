import csv
import json
from argparse import RawDescriptionHelpFormatter

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.utils.translation import gettext_lazy

from automations import replays, workflows
from automations.management.progress import progress, summary
from automations.models import TriggerKind, Workflow
from automations.problems import InvalidDefinition
from automations.redaction import redact_data

EXAMPLE = """examples:
  manage.py replay_events --since 2026-03-01T09:00 --until 2026-03-01T13:30
      start the runs an outage missed; pairs that already ran are skipped
  manage.py replay_events --since 7d --dry-run --report would.csv
      what every active workflow would have done over the last 7 days
  manage.py replay_events --since 30d --workflow "Refund small fraud" --dry-run
      backtest one workflow (its draft if it was never activated)
  manage.py replay_events --ids evt_1Pq... evt_1Pr... --type charge.refunded

--since and --until take a period ago (30m, 24h, 7d, 2w) or an ISO date or time; without
--since and --ids, the last 7 days. Without --dry-run the events go through the live
entry as the replay kind, keyed by event id, so nothing runs twice. With --dry-run
nothing reaches Stripe, Slack or mail and no run is written; --report FILE.csv or
FILE.json writes every request the steps would have sent.
"""


class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    pass


class Command(BaseCommand):
    help = gettext_lazy(
        "Send stored Stripe events through the live entry again (replay), or rehearse "
        "what workflows would do on them (--dry-run)."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("epilog", EXAMPLE)
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", help=gettext_lazy("Events created from then (7d, 24h, ISO date).")
        )
        parser.add_argument("--until", help=gettext_lazy("Events created up to then (same forms)."))
        parser.add_argument(
            "--type", nargs="+", dest="types", default=[], help=gettext_lazy("Event types.")
        )
        parser.add_argument("--ids", nargs="+", default=[], help=gettext_lazy("Event ids (evt_…)."))
        parser.add_argument(
            "--workflow",
            nargs="+",
            dest="workflow_names",
            default=[],
            metavar="ID_OR_NAME",
            help=gettext_lazy("Only these workflows."),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext_lazy("Send nothing and write no run: report what would happen."),
        )
        parser.add_argument(
            "--report",
            help=gettext_lazy("With --dry-run: write every request to FILE.csv or FILE.json."),
        )

    def handle(self, *args, since, until, types, ids, workflow_names, dry_run, report, **options):
        if report and not dry_run:
            raise CommandError("--report goes with --dry-run.")
        if report and not report.lower().endswith((".csv", ".json")):
            raise CommandError("--report must name a .csv or .json file.")
        try:
            since = replays.parse_moment(since) if since else None
            until = replays.parse_moment(until) if until else None
        except ValueError as e:
            raise CommandError(str(e)) from e
        if since is None and not ids:
            since = replays.parse_moment("7d")
        chosen = self.workflows(workflow_names, dry_run)
        if dry_run:
            self.dry_run(chosen, since, until, types, ids, report)
        else:
            self.replay(chosen, since, until, types, ids, named=bool(workflow_names))

    def workflows(self, names, dry_run):
        """Return the workflows asked for (all active Stripe event ones if none)."""
        if not names:
            return list(
                Workflow.objects.filter(
                    status=Workflow.Status.ACTIVE,
                    active_version__isnull=False,
                    trigger_kind=TriggerKind.STRIPE_EVENT,
                )
                .select_related("active_version")
                .order_by("pk")
            )
        chosen = {}
        for name in names:
            found = list(Workflow.objects.filter(pk=int(name)) if name.isdigit() else []) or list(
                Workflow.objects.filter(name=name)
            )
            if not found:
                raise CommandError(f"No workflow {name!r}.")
            if len(found) > 1:
                raise CommandError(f"{len(found)} workflows are named {name!r}: give its id.")
            workflow = found[0]
            if workflow.trigger_kind != TriggerKind.STRIPE_EVENT:
                raise CommandError(
                    f"“{workflow.name}” is not started by a Stripe event: "
                    "there are no stored events to replay for it."
                )
            if not dry_run and (
                workflow.status != Workflow.Status.ACTIVE or not workflow.active_version_id
            ):
                raise CommandError(
                    f"“{workflow.name}” is not active: a replay starts runs of active "
                    "workflows only. Use --dry-run to backtest it."
                )
            chosen[workflow.pk] = workflow
        return list(chosen.values())

    # ------------------------------------------------------------ dry run

    def dry_run(self, chosen, since, until, types, ids, report):
        results = []
        # The active version, as runs would use it; a workflow never activated, its draft.
        rehearsed = [
            (w, w.active_version.definition if w.active_version_id else workflows.draft(w))
            for w in chosen
        ]
        rehearsed = [
            (w, data)
            for w, data in rehearsed
            if not types or data["trigger"].get("event_type") in types
        ]
        total = sum(
            replays.stored_events(since, until, [data["trigger"].get("event_type")], ids).count()
            for _, data in rehearsed
        )
        with progress(self, "Rehearsing", total) as bar:
            for workflow, data in rehearsed:
                try:
                    result = workflows.backtest(
                        data, since, until, workflow.pk, types=types, ids=ids, tick=bar.update
                    )
                except InvalidDefinition as e:
                    raise CommandError(
                        f"“{workflow.name}” cannot be rehearsed: "
                        + "; ".join(str(p) for p in e.problems)
                    ) from e
                results.append(result)
        for result in results:
            self.print_workflow(result)
        if report:
            self.write_report(report, results)
        matched = sum(r["matched"] for r in results)
        money = {}
        for result in results:
            for currency, amount in result["money"].items():
                money[currency] = money.get(currency, 0) + amount
        considered = replays.stored_events(since, until, types, ids).count()
        text = (
            f"Dry run: {considered} stored event(s), {len(results)} workflow(s), "
            f"{matched} run(s) would start"
        )
        if money:
            text += f", {replays.format_amounts(money)} would move"
        text += "; nothing was sent or written"
        text += f"; report written to {report}." if report else "."
        summary(self, text)

    def print_workflow(self, result):
        workflow = result["workflow"]
        self.stdout.write(
            f"Workflow {workflow['id']} “{workflow['name']}” ({result['event_type']})"
        )
        self.stdout.write(f"  events matched: {result['matched']} of {result['considered']}")
        if result["own"]:
            self.stdout.write(f"  caused by its own Stripe writes (skipped): {result['own']}")
        for name, arms in result["branches"].items():
            self.stdout.write(f"  branch {name}: then {arms['then']}, else {arms['else']}")
        if result["money"]:
            self.stdout.write(f"  money that would move: {replays.format_amounts(result['money'])}")
            for line in replays.money_lines(result):
                self.stdout.write(f"    {line}")
        if result["halted"]:
            self.stdout.write(f"  would stop on an error: {result['halted']}")

    def write_report(self, path, results):
        rows = [redact_data(row) for result in results for row in result["requests"]]
        try:
            with open(path, "w", newline="", encoding="utf-8") as out:
                if path.lower().endswith(".json"):
                    json.dump(rows, out, ensure_ascii=False, indent=2)
                    out.write("\n")
                    return
                writer = csv.writer(out)
                writer.writerow(
                    ["workflow_id", "workflow", "event", "event_type", "step", "kind", "request"]
                )
                for row in rows:
                    writer.writerow(
                        [
                            row["workflow_id"],
                            row["workflow"],
                            row["event"],
                            row["event_type"],
                            row["step"],
                            row["kind"],
                            json.dumps(row["request"], ensure_ascii=False, sort_keys=True),
                        ]
                    )
        except OSError as e:
            raise CommandError(f"Cannot write {path}: {e}") from e

    # ------------------------------------------------------------ replay

    def replay(self, chosen, since, until, types, ids, named):
        if not chosen:
            summary(self, "No active workflow is started by Stripe events: nothing to replay.")
            return
        total = replays.stored_events(since, until, types, ids).count()
        only = [w.pk for w in chosen] if named else None
        with progress(self, "Replaying", total) as bar:
            result = workflows.replay(since, until, types, ids, only, tick=bar.update)
        names = {w.pk: w.name for w in chosen}
        for workflow_id, count in sorted(result["by_workflow"].items()):
            name = names.get(workflow_id, workflow_id)
            self.stdout.write(f"Workflow {workflow_id} “{name}”: {count} run(s) started")
        if result["too_old"]:
            self.stderr.write(
                f"{result['too_old']} event(s) older than the run retention period "
                f"({settings.KANRI_RUN_RETENTION_DAYS} days) were not replayed: their runs may "
                "have been pruned, so Kanri cannot tell whether they already ran."
            )
        for event_id, error in result["failed"]:
            self.stderr.write(f"{event_id}: {error}")
        text = (
            f"Replayed {result['events']} stored event(s): {len(result['started'])} run(s) "
            f"started, {result['already']} (workflow, event) pair(s) had already run"
        )
        if result["failed"]:
            summary(self, f"{text}, {len(result['failed'])} event(s) failed.", failed=True)
            raise SystemExit(1)
        summary(self, text + ".")
