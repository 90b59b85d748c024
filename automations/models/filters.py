"""Saved filter bookmarks: a named admin list URL, private to its owner or shared with the team."""

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def new_slug():
    # Short enough to paste into a wiki, random so a URL says nothing about its filter.
    return secrets.token_urlsafe(6)


class SavedFilter(models.Model):
    """An admin changelist (`list`) and its query string; `slug` makes its stable short URL.

    The URL never depends on the name, so renaming keeps pasted links working.
    """

    name = models.CharField(_("name"), max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="saved_filters",
        verbose_name=_("owner"),
    )
    shared = models.BooleanField(
        _("shared with the team"),
        default=False,
        help_text=_("Shared filters are listed for everyone who may see the list."),
    )
    list = models.CharField(
        _("list"), max_length=100, help_text=_("The admin list, as app_label.model_name.")
    )
    query = models.TextField(_("query"), blank=True, help_text=_("The list's query string."))
    slug = models.CharField(max_length=16, unique=True, default=new_slug, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["list", "name", "pk"]
        verbose_name = _("saved filter")
        verbose_name_plural = _("saved filters")
        indexes = [models.Index(fields=["list", "shared"])]

    def __str__(self):
        return self.name
