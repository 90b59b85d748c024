from argparse import RawDescriptionHelpFormatter
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from automations import workflow_files, workflows
from automations.management.progress import progress, summary
from automations.problems import InvalidDefinition

EXAMPLE = gettext_lazy(
    """examples:
  manage.py import_workflows workflows/ --check
  manage.py import_workflows workflows/
  manage.py import_workflows refund.yaml vip.yaml --owner hana

Each file (a directory: every *.yaml and *.yml in it) is matched to the workflow with
exactly its name: that workflow's draft is replaced, or a new draft workflow is created.
Nothing is ever activated: an active workflow keeps running its active version until a
person activates the new draft in the admin. The file's `status` is for information only.

Every file is checked by the same validator as the editor; each problem is printed with
its file and place (refund.yaml: steps.1.then.0.config.amount: …). A file with any
problem imports nothing, and the command exits 1; the other files are imported.

--check writes nothing: it prints, per file, created, updated (with a diff) or unchanged,
and exits 1 if anything would change.
"""
)


class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    pass


class Command(BaseCommand):
    help = gettext_lazy("Create or update workflow drafts from YAML files (never activates).")

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("epilog", EXAMPLE)
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
        parser.add_argument(
            "--check",
            action="store_true",
            help=gettext_lazy("Write nothing; say what would change and exit 1 if anything would."),
        )
        parser.add_argument(
            "--owner",
            default=None,
            metavar="USERNAME",
            help=gettext_lazy(
                "Make this user the owner of every workflow, whatever the files say."
            ),
        )

    def handle(self, *args, paths, check, owner, **options):
        users = get_user_model().objects
        forced = None
        if owner:
            forced = users.filter(username=owner).first()
            if forced is None:
                raise CommandError(_("There is no user %(username)r.") % {"username": owner})
        files = self.files(paths)
        counts = {"created": 0, "updated": 0, "unchanged": 0, "invalid": 0}
        names = {}
        with progress(self, _("Importing workflows"), len(files)) as bar:
            for path in files:
                bar.update()
                outcome = self.import_file(path, forced, names, check)
                counts[outcome] += 1
        changed = counts["created"] + counts["updated"]
        params = {**counts, "files": len(files)}
        if check:
            text = _(
                "Checked %(files)d files: %(created)d would be created, %(updated)d updated, "
                "%(unchanged)d unchanged, %(invalid)d invalid."
            )
        else:
            text = _(
                "Imported %(files)d files: %(created)d created, %(updated)d updated, "
                "%(unchanged)d unchanged, %(invalid)d invalid."
            )
        failed = bool(counts["invalid"] or (check and changed))
        summary(self, text % params, failed=failed)
        if failed:
            raise SystemExit(1)

    def files(self, paths):
        found = []
        for value in paths:
            path = Path(value)
            if path.is_dir():
                found += sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file() and p.suffix.lower() in workflow_files.SUFFIXES
                )
            elif path.is_file():
                found.append(path)
            else:
                raise CommandError(_("%(path)s: no such file or directory.") % {"path": value})
        return found

    def import_file(self, path, forced, names, check):
        """Import one file (or check it); return its outcome, or "invalid"."""
        label = str(path)
        try:
            with path.open("rb") as f:
                # One byte over the limit is enough for the reader to refuse the file.
                document = workflow_files.read(f.read(workflow_files.MAX_BYTES + 1))
        except OSError as e:
            return self.invalid(label, [e.strerror or str(e)])
        errors = [str(e) for e in document.errors]
        if document.definition is None:
            return self.invalid(label, errors)
        owner = forced
        if forced is None and document.owner:
            owner = get_user_model().objects.filter(username=document.owner).first()
            if owner is None:
                errors.append(
                    str(
                        workflow_files.FileError(
                            "owner",
                            _("There is no user %(username)r.") % {"username": document.owner},
                        )
                    )
                )
        name = document.definition.get("name")
        if isinstance(name, str) and name in names:
            errors.append(
                str(
                    workflow_files.FileError(
                        "name",
                        _("%(other)s names the same workflow %(name)r.")
                        % {"other": names[name], "name": name},
                    )
                )
            )
        try:
            # A file with errors of its own is still run through the validator (undone),
            # so that every problem is reported at once.
            result = workflows.import_definition(
                document.definition, owner=owner, dry_run=check or bool(errors)
            )
        except InvalidDefinition as e:
            errors += [str(problem) for problem in e.problems]
        except workflows.AmbiguousName as e:
            errors.append(
                str(
                    workflow_files.FileError(
                        "name",
                        _("%(count)d workflows are named %(name)r: rename all but one first.")
                        % {"count": e.count, "name": e.name},
                    )
                )
            )
        if errors:
            return self.invalid(label, errors)
        if isinstance(name, str):
            names[name] = label
        outcome = result["outcome"]
        words = {
            (False, "created"): _("created (draft)"),
            (False, "updated"): _("draft updated"),
            (False, "unchanged"): _("unchanged"),
            (True, "created"): _("would be created"),
            (True, "updated"): _("would be updated"),
            (True, "unchanged"): _("unchanged"),
        }
        mark = {"created": "+", "updated": "~", "unchanged": "="}[outcome]
        self.stdout.write(f"{mark} {label}: {name}: {words[(check, outcome)]}")
        if check and outcome == "updated":
            for line in result["diff"]:
                self.stdout.write(f"    {line}")
        return outcome

    def invalid(self, label, errors):
        for error in errors:
            self.stderr.write(f"{label}: {error}")
        self.stderr.write(f"! {label}: " + _("invalid, nothing imported"))
        return "invalid"
