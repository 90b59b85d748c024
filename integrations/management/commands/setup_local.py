import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from djstripe.enums import WebhookEndpointStatus
from djstripe.models import APIKey, WebhookEndpoint

LOCAL_ENDPOINT_ID = "we_kanri_local"
DEMO_USERNAME = "admin"


class Command(BaseCommand):
    help = _(
        "Create (or show) what a local Kanri needs: a demo admin user, the Stripe account "
        "and API key rows, and a webhook endpoint with its signing secret. Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help=_("Where this Kanri is reachable; used to print the webhook URL."),
        )

    def handle(self, *args, base_url, **options):
        if not settings.DEBUG:
            raise CommandError(_t("setup_local creates a demo admin; it only runs with DEBUG on."))
        password = self.demo_admin()
        account = self.stripe_account()
        endpoint = self.webhook_endpoint(account, base_url)
        self.stdout.write(
            "\n".join(
                [
                    "",
                    _t("  Admin:          %(url)s") % {"url": f"{base_url.rstrip('/')}/admin/"},
                    _t("  Login:          %(user)s / %(password)s")
                    % {"user": DEMO_USERNAME, "password": password},
                    _t("  Stripe account: %(account)s")
                    % {"account": account.id if account else _t("(none)")},
                    _t("  Webhook URL:    %(url)s") % {"url": endpoint.url},
                    _t("  Signing secret: %(secret)s") % {"secret": endpoint.secret},
                    "",
                    _t("  Send a test event: %(command)s")
                    % {
                        "command": "python manage.py trigger_stripe_event "
                        "customer.subscription.deleted"
                    },
                    "",
                ]
            )
        )

    def demo_admin(self):
        """Return the demo admin's password, creating the user on the first run.

        The password is kept in var/ (git-ignored) so that re-running prints the same
        one instead of logging everybody out.
        """
        path = settings.VAR_DIR / "demo-admin-password"
        User = get_user_model()
        user = User.objects.filter(username=DEMO_USERNAME).first()
        if user and path.exists():
            return path.read_text().strip()
        password = secrets.token_urlsafe(12)
        if user is None:
            user = User(username=DEMO_USERNAME, email="admin@example.test")
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(password + "\n")
        path.chmod(0o600)
        return password

    def stripe_account(self):
        key, _ = APIKey.objects.get_or_create_by_api_key(settings.STRIPE_SECRET_KEY)
        if key.djstripe_owner_account is None:
            # GET /v1/account: the local fake answers it, as does Stripe in test mode.
            key.refresh_account()
        return key.djstripe_owner_account

    def webhook_endpoint(self, account, base_url):
        endpoint = WebhookEndpoint.objects.filter(id=LOCAL_ENDPOINT_ID).first()
        if endpoint is None:
            endpoint = WebhookEndpoint(
                id=LOCAL_ENDPOINT_ID,
                livemode=settings.STRIPE_LIVE_MODE,
                enabled_events=["*"],
                secret="whsec_" + secrets.token_urlsafe(24),
                status=WebhookEndpointStatus.enabled,
                djstripe_owner_account=account,
            )
        path = reverse("djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint.djstripe_uuid})
        endpoint.url = base_url.rstrip("/") + path
        endpoint.save()
        return endpoint
