"""Saved filter bookmarks on admin lists: "Save this filter", the menu, the short URL, and
the "Saved filters" admin. A screen for automations/bookmarks.py, which holds every rule.

`SavedFiltersMixin` goes first in the bases of every list that offers "Save this filter"
(the Stripe lists and Runs).
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import CharField, Value
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from automations import bookmarks
from automations.models import SavedFilter


def open_saved_filter(request, slug):
    """The short URL /f/<slug>/: open the saved filter's list for anyone who may see it."""
    return HttpResponseRedirect(bookmarks.resolve(slug, request.user))


def _list_name(list_label):
    from django.apps import apps

    try:
        return str(apps.get_model(list_label)._meta.verbose_name_plural).capitalize()
    except (LookupError, ValueError):
        return list_label


def _menu_item(saved_filter, user, current_query):
    return {
        "name": saved_filter.name,
        "url": bookmarks.list_url(saved_filter),
        "short_url": bookmarks.url(saved_filter),
        "shared": saved_filter.shared,
        "mine": saved_filter.owner_id == user.pk,
        "owner": saved_filter.owner.get_username() if saved_filter.owner_id else "",
        "active": saved_filter.query == current_query,
    }


class SavedFiltersMixin:
    """Adds "Save this filter" and the saved-filter menu to a ModelAdmin's changelist."""

    change_list_template = "admin/kanri/change_list.html"

    def _list_label(self):
        return f"{self.opts.app_label}.{self.opts.model_name}"

    def get_urls(self):
        return [
            path(
                "save-filter/",
                self.admin_site.admin_view(self.save_filter_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_save_filter",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        current = bookmarks.normalise(request.GET.urlencode())
        context = {
            "saved_filters": [
                _menu_item(saved, request.user, current)
                for saved in bookmarks.visible(request.user, self._list_label())
            ],
            "save_filter": {
                "allowed": request.user.has_perm("automations.add_savedfilter"),
                "url": reverse(
                    f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}"
                    "_save_filter"
                ),
                "query": current,
            },
            "saved_filters_url": reverse(
                f"{self.admin_site.name}:automations_savedfilter_changelist"
            ),
        }
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def save_filter_view(self, request):
        """Save the list's current query (posted by the "Save this filter" form), then go
        back to the same filtered list."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        query = request.POST.get("query", "")
        back = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
        )
        try:
            saved = bookmarks.save(
                request.user,
                self._list_label(),
                query,
                request.POST.get("name", ""),
                shared=request.POST.get("shared") == "on",
            )
        except bookmarks.FilterError as e:
            self.message_user(request, e.message, messages.ERROR)
            normalised = bookmarks.normalise(query)
            return HttpResponseRedirect(f"{back}?{normalised}" if normalised else back)
        short = request.build_absolute_uri(bookmarks.url(saved))
        self.message_user(
            request,
            format_html(
                _t("Saved the filter “{name}”. Its link: {link}"),
                name=saved.name,
                link=format_html('<a href="{}" class="kanri-short-url">{}</a>', short, short),
            ),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(bookmarks.list_url(saved))


class SavedFilterForm(forms.ModelForm):
    class Meta:
        model = SavedFilter
        fields = ["name", "shared"]


@admin.register(SavedFilter)
class SavedFilterAdmin(admin.ModelAdmin):
    """Everyone's own saved filters and the team's shared ones; only the owner changes one.

    New filters come from "Save this filter" on a list, so there is no add form; changes
    go through the service, which keeps the LogEntry.
    """

    form = SavedFilterForm
    list_display = ["name", "list_name", "owner_name", "shared", "short_url"]
    readonly_fields = ["list_name", "query", "owner_name", "short_url", "open_link"]
    list_filter = ["shared", "list"]
    search_fields = ["name"]
    actions = None  # a bulk delete would not ask the owner rule per filter

    def get_queryset(self, request):
        # The site's address rides along with each row, so the short URL column can show the
        # full link (a ModelAdmin is shared by every request; a row is not).
        site = request.build_absolute_uri("/").rstrip("/")
        return bookmarks.visible(request.user).annotate(
            kanri_site=Value(site, output_field=CharField())
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or bookmarks.may_change(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or bookmarks.may_change(request.user, obj))

    @admin.display(description=_("short URL"))
    def short_url(self, obj):
        # The full URL as the link text, so it can be copied as it is into a wiki or chat.
        absolute = getattr(obj, "kanri_site", "") + bookmarks.url(obj)
        return format_html('<a href="{}" class="kanri-short-url">{}</a>', absolute, absolute)

    @admin.display(description=_("list"), ordering="list")
    def list_name(self, obj):
        return _list_name(obj.list)

    @admin.display(description=_("owner"), ordering="owner__username")
    def owner_name(self, obj):
        return obj.owner.get_username() if obj.owner_id else "—"

    @admin.display(description=_("opens"))
    def open_link(self, obj):
        return format_html('<a href="{}">{}</a>', bookmarks.list_url(obj), _t("Open the list"))

    def _visible_or_404(self, request, object_id):
        # Someone else's private filter does not exist, as far as this user can tell.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404(_t("No such saved filter."))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._visible_or_404(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._visible_or_404(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._visible_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def save_model(self, request, obj, form, change):
        original = SavedFilter.objects.get(pk=obj.pk)
        bookmarks.update(request.user, original, name=form.cleaned_data["name"], shared=obj.shared)
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        bookmarks.delete(request.user, obj)

    # The service writes the LogEntry for every change; the admin's own would be a second.
    def log_change(self, request, obj, message):
        return None

    def log_deletions(self, request, queryset):
        return None
