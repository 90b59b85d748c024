from django.contrib import admin
from django.urls import include, path

from automations.admin import credit
from automations.admin.bookmarks import open_saved_filter
from integrations.stripe_webhooks import receive_webhook

urlpatterns = [
    # Kanri's receiver answers at dj-stripe's own webhook path (listed first, so it wins);
    # dj-stripe's URL names still reverse to it.
    path("stripe/webhook/<uuid:uuid>/", receive_webhook, name="stripe_webhook"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    # A saved filter's short URL, for wikis and chat: staff only (the admin's login page).
    path("f/<str:slug>/", admin.site.admin_view(open_saved_filter), name="saved_filter"),
    # The result of "Refund as store credit…" and its CSV (staff only, as the admin).
    path("admin/kanri/store-credit/", include((credit.urlpatterns, "kanri_credit"))),
    path("api/", include("automations.api.urls")),
    path("admin/", admin.site.urls),
]
