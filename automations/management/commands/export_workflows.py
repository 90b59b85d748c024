from argparse import RawDescriptionHelpFormatter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from automations import workflow_files, workflows
from automations.management.progress import progress, summary
from automations.models import Workflow

EXAMPLE = gettext_lazy(
    """examples:
  manage.py export_workflows workflows/
  manage.py export_workflows workflows/ --workflow "Tag VIP customers" --workflow 12
  manage.py export_workflows live/ --active

One YAML file per workflow, named after it (tag-vip-customers.yaml), holding its format
version, name, description, owner (a username), status (for information), trigger,
conditions, money caps (limits) and steps, in a fixed key order so that diffs review
well. The draft is written unless --active is given; a workflow never activated is then
left out. Files of other workflows in DIR are left alone. Read them back with
`manage.py import_workflows DIR`.
"""
)


class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    pass


class Command(BaseCommand):
    help = gettext_lazy("Write workflows as YAML files, one per workflow, into a directory.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("epilog", EXAMPLE)
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("directory", metavar="DIR", help=gettext_lazy("Where to write."))
        parser.add_argument(
            "--workflow",
            action="extend",
            nargs="+",
            default=[],
            metavar="ID_OR_NAME",
            help=gettext_lazy("Only these workflows (an id or an exact name; repeatable)."),
        )
        parser.add_argument(
            "--active",
            action="store_true",
            help=gettext_lazy("Write each workflow's active version instead of its draft."),
        )

    def handle(self, *args, directory, workflow, active, **options):
        chosen = self.choose(workflow)
        target = Path(directory)
        if target.exists() and not target.is_dir():
            raise CommandError(_("%(dir)s is not a directory.") % {"dir": directory})
        target.mkdir(parents=True, exist_ok=True)
        counts = {"written": 0, "unchanged": 0, "skipped": 0}
        names = self.file_names()
        with progress(self, _("Exporting workflows"), len(chosen)) as bar:
            for row in chosen:
                bar.update()
                if active and row.active_version_id is None:
                    counts["skipped"] += 1
                    self.stdout.write(
                        "- " + _("%(name)s (never activated, left out)") % {"name": row.name}
                    )
                    continue
                data = row.active_version.definition if active else workflows.draft(row)
                text = workflow_files.dumps(
                    {**data, "name": row.name},
                    owner=row.owner.get_username() if row.owner_id else None,
                    status=row.status,
                )
                name = names[row.pk]
                path = target / name
                encoded = text.encode("utf-8")
                if path.exists() and path.read_bytes() == encoded:
                    counts["unchanged"] += 1
                    self.stdout.write(f"= {name}")
                    continue
                path.write_bytes(encoded)
                counts["written"] += 1
                self.stdout.write(f"+ {name}")
        summary(
            self,
            _(
                "Exported %(total)d workflows to %(dir)s: %(written)d written, "
                "%(unchanged)d unchanged, %(skipped)d left out."
            )
            % {"total": len(chosen) - counts["skipped"], "dir": directory, **counts},
        )

    def file_names(self):
        """Return {workflow id: file name}, decided over every workflow in id order, so a
        workflow's file keeps its name whichever workflows an export picks."""
        names, taken = {}, set()
        for pk, name in Workflow.objects.order_by("pk").values_list("pk", "name"):
            names[pk] = workflow_files.filename(name, pk, taken)
            taken.add(names[pk])
        return names

    def choose(self, wanted):
        """Return the workflows to export, in id order (so file names are stable)."""
        rows = Workflow.objects.select_related("owner", "active_version").order_by("pk")
        if not wanted:
            return list(rows)
        chosen, missing = {}, []
        for value in wanted:
            found = list(rows.filter(name=value))
            if not found and value.isdigit():
                found = list(rows.filter(pk=int(value)))
            if not found:
                missing.append(value)
            chosen.update((w.pk, w) for w in found)
        if missing:
            raise CommandError(
                _("No workflow with the id or name: %(missing)s.")
                % {"missing": ", ".join(repr(m) for m in missing)}
            )
        return [chosen[pk] for pk in sorted(chosen)]
