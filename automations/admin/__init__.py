"""Kanri's admin: workflows and their editor, runs, reusable actions, Stripe object lists."""

# Importing each module registers its admins.
from automations.admin import (  # noqa: F401
    bookmarks,
    reconcile,
    runs,
    site,
    stripe,
    tokens,
    workflows,
)

site.install()
