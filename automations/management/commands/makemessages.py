"""Django's makemessages, also extracting Kanri's gettext aliases.

Modules that need both run-time and lazy translation import `gettext as _t` (and once
`gettext_lazy as _l`); xgettext knows only the standard names, so without these keywords
their strings would never reach the catalogs (and makemessages would drop their
translations as obsolete).
"""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=_t", "--keyword=_l"]
