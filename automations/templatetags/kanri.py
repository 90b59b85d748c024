"""Template helpers for Kanri's pages: `{% load kanri %}`."""

from django import template

from automations.timefmt import format_time

register = template.Library()


@register.filter
def when(value):
    """Show a datetime or Stripe timestamp in the reader's zone, named: 2026-12-01 21:00 JST."""
    return format_time(value)
