"""Kanri's admin: workflows and their editor, runs, reusable actions, Stripe object lists."""

from automations.admin import runs, stripe, workflows  # noqa: F401  (registers the admins)
