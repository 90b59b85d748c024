"""API authentication, permissions and throttling.

Machine clients send `Authorization: Bearer kanri_…` (or `Token kanri_…`). Only a token's
SHA-256 is stored, so a lookup by digest needs no constant-time comparison: an attacker
who can time the query learns about digests, not about tokens. The request then carries
the token's user, and with them that user's role (Django groups and permissions).
"""

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

from automations.models.tokens import PREFIX, ApiToken, digest

KEYWORDS = ("bearer", "token")
# last_used_at is for people deciding which tokens are stale, so minute precision is
# plenty, and it saves a write on every request of a busy CI job.
TOUCH_EVERY = timedelta(minutes=1)


class TokenAuthentication(BaseAuthentication):
    """Authenticate a request by a Kanri API token (see automations/models/tokens.py)."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].decode("latin-1").lower() not in KEYWORDS:
            return None  # not ours: session auth may still apply
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Invalid Authorization header: send “Bearer kanri_…”, with no spaces in it.")
            )
        try:
            raw = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not raw.startswith(PREFIX):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token = ApiToken.objects.select_related("user").filter(digest=digest(raw)).first()
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("This token has been revoked."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("This token's user is inactive."))
        self.touch(token)
        return token.user, token

    def touch(self, token):
        """Record when the token was last used, at most once a minute."""
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now

    def authenticate_header(self, request):
        # Makes DRF answer 401 (with WWW-Authenticate) rather than 403 to anonymous clients.
        return 'Bearer realm="api"'


class TokenScheme(OpenApiAuthenticationExtension):
    """The token scheme in /api/schema/ (drf-spectacular finds it by target_class)."""

    target_class = "automations.api.auth.TokenAuthentication"
    name = "kanriToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "kanri_…",
            "description": str(
                _(
                    "A Kanri API token: `manage.py create_api_token USERNAME --name CI`. "
                    "“Token kanri_…” is accepted as well."
                )
            ),
        }


class HasPerms(BasePermission):
    """Require Django permissions per view action, for views without a model queryset.

    The view sets `required_perms = {action: (perm, …)}`; an action not listed needs none
    beyond being signed in.
    """

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        wanted = getattr(view, "required_perms", {}).get(getattr(view, "action", None), ())
        return user.has_perms(wanted)


class WriteThrottle(UserRateThrottle):
    """Throttle writes (POST, PUT, PATCH, DELETE) per user; reads are never throttled."""

    scope = "writes"

    def get_rate(self):
        # Read the rates now, not at import (SimpleRateThrottle binds them to the class),
        # so a settings change (a test's, an operator's env) takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)
