from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from automations import workflows
from automations.models import Workflow
from automations.problems import InvalidDefinition
from automations.templates import TEMPLATES, ensure_filters


class Command(BaseCommand):
    help = (
        "Create the scenario workflows as drafts (skipping any whose name already exists), "
        "for staff to adjust and activate in the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "names", nargs="*", help=f"Any of: {', '.join(TEMPLATES)} (default: all)"
        )
        parser.add_argument("--team", default=None, help="Team address for the email steps.")
        parser.add_argument("--owner", default=None, help="Username of the workflows' owner.")

    def handle(self, *args, names, team, owner, **options):
        unknown = sorted(set(names) - set(TEMPLATES))
        if unknown:
            raise CommandError(f"Unknown template(s): {', '.join(unknown)}.")
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"No user {owner!r}.")
        for key in names or TEMPLATES:
            definition = TEMPLATES[key](**({"team": team} if team else {}))
            if Workflow.objects.filter(name=definition["name"]).exists():
                self.stdout.write(f"= {definition['name']} (exists, left as it is)")
                continue
            ensure_filters(definition)  # a scheduled template's saved filter
            try:
                workflow = workflows.create(definition, owner=user)
            except InvalidDefinition as e:
                # The one validator's problems, each with where it is in the template.
                raise CommandError(
                    f"Template {key} is not valid:\n"
                    + "\n".join(f"  {problem}" for problem in e.problems)
                ) from e
            self.stdout.write(f"+ {workflow.name} (draft #{workflow.pk})")
