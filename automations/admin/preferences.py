"""“My preferences”: the language and time zone each person reads Kanri in."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import translation
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from automations.models.profiles import UserProfile, time_zones


class PreferencesForm(forms.ModelForm):
    language = forms.ChoiceField(label=_("Language"), required=False)
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False)

    class Meta:
        model = UserProfile
        fields = ["language", "time_zone"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("The browser's language"))] + [
            (code, name) for code, name in settings.LANGUAGES
        ]
        site_zone = _("The site's time zone (%(zone)s)") % {"zone": settings.TIME_ZONE}
        self.fields["time_zone"].choices = [("", site_zone)] + [(z, z) for z in time_zones()]


def preferences_view(site, request):
    profile = UserProfile.objects.filter(user=request.user).first() or UserProfile(
        user=request.user
    )
    form = PreferencesForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        profile = form.save()
        # Said in the language just chosen, which the next page is shown in.
        language = profile.language or translation.get_language_from_request(request)
        with translation.override(language):
            messages.success(request, _t("Your preferences were saved."))
        return redirect("admin:kanri_preferences")
    context = {
        **site.each_context(request),
        "title": _t("My preferences"),
        "form": form,
    }
    return TemplateResponse(request, "admin/kanri/preferences.html", context)
