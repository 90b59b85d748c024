"""Each person's language and time zone: blank means the browser's language, the site's zone."""

from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


def time_zones():
    """Return the IANA zone names a person may choose, sorted (Asia/Tokyo, Europe/Paris, …)."""
    return sorted(available_timezones() - {"localtime", "Factory", "posixrules"})


def validate_time_zone(value):
    if value and value not in available_timezones():
        raise ValidationError(
            _("%(zone)s is not a time zone (such as Asia/Tokyo)."), params={"zone": value}
        )


class UserProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="kanri_profile",
        verbose_name=_("user"),
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_("Blank: the browser's language."),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text=_("Blank: the site's time zone."),
    )

    class Meta:
        verbose_name = _("user preferences")
        verbose_name_plural = _("user preferences")

    def __str__(self):
        return str(self.user)

    @classmethod
    def of(cls, user):
        """Return the user's saved preferences, or None (one query; no row is created)."""
        if not getattr(user, "is_authenticated", False):
            return None
        return cls.objects.filter(user=user).first()
