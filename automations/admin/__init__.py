"""Kanri's admin: workflows and their editor, runs, reusable actions, Stripe object lists."""

# Importing each module registers its admins.
from automations.admin import (  # noqa: F401
    bookmarks,
    connections,
    reconcile,
    runs,
    site,
    stripe,
    sync_problems,
    tokens,
    users,
    workflows,
)

site.install()
