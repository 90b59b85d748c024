"""Times as staff read them: in their time zone, always with the zone named.

The one home for showing a time. Django's own rendering of datetimes (admin lists, read-only
fields) uses the same format through config/formats; templates use `{{ value|when }}` from
`{% load kanri %}`, and Python code `format_time(value)`.
"""

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.formats import date_format

FORMAT = "Y-m-d H:i T"  # 2026-12-01 21:00 JST


def format_time(value, zone=None):
    """Return "2026-12-01 21:00 JST": a datetime or Stripe timestamp in `zone` or the active one.

    The active zone is the user's (their preferences) or the site's TIME_ZONE.
    """
    if value in (None, ""):
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = datetime.fromtimestamp(value, tz=UTC)
    if not isinstance(value, datetime):
        return str(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return date_format(timezone.localtime(value, zone), FORMAT)


def zone_name():
    """Return the active time zone's name and abbreviation now: "Asia/Tokyo (JST)"."""
    zone = timezone.get_current_timezone()
    return f"{zone.key} ({timezone.localtime(timezone.now()).tzname()})"
