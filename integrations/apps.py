from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self):
        import stripe

        # dj-stripe's sync uses the SDK's global client. Its default of two retries with
        # sleeps held a worker ~1.3 s per event during a Stripe outage (measured), starving
        # workflow runs; Kanri retries failed syncs itself. 20 s bounds a hung request.
        stripe.max_network_retries = 0
        stripe.default_http_client = stripe.RequestsClient(timeout=20)
