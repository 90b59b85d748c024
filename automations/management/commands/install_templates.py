from argparse import RawDescriptionHelpFormatter

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext_lazy

from automations import workflows
from automations.management.progress import summary
from automations.models import Workflow
from automations.problems import InvalidDefinition
from automations.templates import TEMPLATES, build, ensure_filters

HELP = gettext_lazy("""\
Create the scenario workflows (A1-A3, B, C, D, E1-E3) as drafts, for staff to adjust and
activate in the admin ("New workflow from template" there creates one at a time).

It is safe to run again: a template is installed once, and known by its name. When any
workflow has the template's name (a draft, active or paused, edited or not), it is left
as it is and nothing is created: an installed template that staff edited is never
overwritten. To install a fresh copy next to an edited one, rename the edited workflow
first, or use the gallery, which always creates a new draft.

examples:
  manage.py install_templates                          every template
  manage.py install_templates welcome_new_customers    one template, by name
  manage.py install_templates --owner alice --team ops@example.com --channel '#ops'
""")


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs["formatter_class"] = RawDescriptionHelpFormatter
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument(
            "names",
            nargs="*",
            help=gettext_lazy("Any of: %(names)s (default: all).")
            % {"names": ", ".join(TEMPLATES)},
        )
        parser.add_argument(
            "--team", default=None, help=gettext_lazy("Team address for the email steps.")
        )
        parser.add_argument(
            "--channel",
            default=None,
            help=gettext_lazy("Slack channel for the Slack steps (#name or id)."),
        )
        parser.add_argument(
            "--owner", default=None, help=gettext_lazy("Username of the workflows' owner.")
        )

    def handle(self, *args, names, team, channel, owner, **options):
        unknown = sorted(set(names) - set(TEMPLATES))
        if unknown:
            raise CommandError(
                f"Unknown template(s): {', '.join(unknown)}. Known: {', '.join(TEMPLATES)}."
            )
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"No user {owner!r}.")
        created = kept = 0
        for key in dict.fromkeys(names) or TEMPLATES:
            data = build(key, team=team, channel=channel)
            existing = Workflow.objects.filter(name=data["name"]).order_by("pk").first()
            if existing is not None:
                kept += 1
                self.stdout.write(f"= {key}: {data['name']} (#{existing.pk} exists, left as it is)")
                continue
            ensure_filters(data)  # a scheduled template's saved filter
            try:
                workflow = workflows.create(data, owner=user)
            except InvalidDefinition as e:
                # The one validator's problems, each with where it is in the template.
                raise CommandError(
                    f"Template {key} is not valid:\n"
                    + "\n".join(f"  {problem}" for problem in e.problems)
                ) from e
            created += 1
            self.stdout.write(f"+ {key}: {workflow.name} (draft #{workflow.pk})")
        summary(
            self,
            f"Installed {created} template(s) as drafts; {kept} already installed, "
            "left as they are."
            if created
            else f"Nothing to install: all {kept} template(s) already installed, left as they are.",
        )
