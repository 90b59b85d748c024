"""API authentication and throttling (being built: issue 11)."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.throttling import UserRateThrottle


class TokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return None


class WriteThrottle(UserRateThrottle):
    scope = "writes"
