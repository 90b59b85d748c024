"""Each request in its reader's language and time zone.

LocaleMiddleware (before this) has already chosen the browser's language; a language saved
in the user's preferences wins over it. The time zone is the user's, else settings.TIME_ZONE.
"""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone, translation

from automations.models.profiles import UserProfile


class UserPreferencesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        profile = UserProfile.of(request.user) if _has_session_user(request) else None
        if profile is not None and profile.language:
            translation.activate(profile.language)
            request.LANGUAGE_CODE = translation.get_language()
        zone = _zone(profile.time_zone) if profile is not None else None
        if zone is not None:
            timezone.activate(zone)
        else:
            timezone.deactivate()  # settings.TIME_ZONE
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def _has_session_user(request):
    # Webhooks and API calls carry no session: do not look a profile up for them.
    user = getattr(request, "user", None)
    return user is not None and user.is_authenticated


def _zone(name):
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # a zone removed from the system's tz database since it was saved
