"""Kanri's admin: workflows and their editor, runs, reusable actions, Stripe object lists."""

# Importing each module registers its admins.
from automations.admin import bookmarks, reconcile, runs, site, stripe, workflows  # noqa: F401

site.install()
