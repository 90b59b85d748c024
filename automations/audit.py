"""The admin history (Django's LogEntry) of what people did, written from one place for the
service, saved filters and the API alike."""

from django.contrib.admin.models import CHANGE, LogEntry


def log(user, obj, message, flag=CHANGE):
    """Record that `user` changed `obj` (a trusted caller, user None, records nothing)."""
    if user is None:
        return
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[obj],
        action_flag=flag,
        change_message=message,
        single_object=True,
    )
