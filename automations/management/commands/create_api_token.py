from argparse import RawDescriptionHelpFormatter

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from automations.models.tokens import PREFIX, ApiToken, digest

EXAMPLE = """examples:
  manage.py create_api_token alice --name CI
      print a new token for alice (only the token goes to stdout, so a script can keep it:
      export KANRI_TOKEN=$(manage.py create_api_token alice --name CI))
  manage.py create_api_token --revoke kanri_AbCd
      revoke the token with this hint (its first characters, as the admin lists them)
  manage.py create_api_token alice --revoke kanri_AbCd
      the same, only among alice's tokens

A token acts as its user, with that user's role. Only its digest is stored: the raw value
is shown once, when it is made, and cannot be shown again; make a new one if it is lost.
"""


class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    pass


class Command(BaseCommand):
    help = gettext_lazy(
        "Create an API token for a user and print it once, or revoke one by its hint."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("epilog", EXAMPLE)
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", help=gettext_lazy("The user the token acts as."))
        parser.add_argument("--name", help=gettext_lazy("What will use the token, such as CI."))
        parser.add_argument(
            "--revoke",
            metavar="HINT",
            help=gettext_lazy("Revoke the token with this hint instead."),
        )

    def handle(self, *args, username, name, revoke, **options):
        user = self._user(username) if username else None
        if revoke:
            return self._revoke(revoke, user)
        if user is None:
            raise CommandError(_("Name the user the token is for (or use --revoke HINT)."))
        if not (name or "").strip():
            raise CommandError(_("Give the token a --name saying what uses it, such as CI."))
        if not user.is_active:
            raise CommandError(_("User %(username)s is inactive.") % {"username": username})
        token, raw = ApiToken.issue(user, name.strip())
        self.stdout.write(raw)
        # The note goes to stderr, so `$(create_api_token …)` captures the token alone.
        self.stderr.write(
            _(
                "Created token “%(name)s” (%(hint)s…) for %(username)s. This is the only "
                "time it is shown: store it now."
            )
            % {"name": token.name, "hint": token.hint, "username": user.get_username()}
        )

    def _user(self, username):
        User = get_user_model()
        try:
            return User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(_("No user %(username)s.") % {"username": username}) from None

    def _revoke(self, hint, user):
        hint = hint.strip().rstrip("…")
        tokens = ApiToken.objects.all()
        if user is not None:
            tokens = tokens.filter(user=user)
        # A whole token works too: someone who found one leaked can revoke it at once.
        if len(hint) > len(PREFIX) + 20:
            tokens = tokens.filter(digest=digest(hint))
        else:
            tokens = tokens.filter(hint=hint)
        found = list(tokens.select_related("user"))
        if not found:
            raise CommandError(_("No token with hint %(hint)s.") % {"hint": hint})
        if len(found) > 1:
            raise CommandError(
                _("%(count)d tokens have hint %(hint)s: name the user as well.")
                % {"count": len(found), "hint": hint}
            )
        token = found[0]
        if token.revoked_at is not None:
            self.stdout.write(
                _("Token “%(name)s” (%(hint)s…) was already revoked; nothing changed.")
                % {"name": token.name, "hint": token.hint}
            )
            return
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        self.stdout.write(
            _("Revoked token “%(name)s” (%(hint)s…) of %(username)s.")
            % {"name": token.name, "hint": token.hint, "username": token.user.get_username()}
        )
