from django.contrib import admin
from django.urls import include, path

from integrations.stripe_webhooks import receive_webhook

urlpatterns = [
    # Kanri's receiver answers at dj-stripe's own webhook path (listed first, so it wins);
    # dj-stripe's URL names still reverse to it.
    path("stripe/webhook/<uuid:uuid>/", receive_webhook, name="stripe_webhook"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("admin/", admin.site.urls),
]
