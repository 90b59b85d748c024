"""Settings come from the environment; production refuses to start without its secrets."""

import os
import re
import subprocess
import sys

from tests.conftest import BASE_DIR

PRODUCTION = {
    "ENV_FILE": "",
    "DEBUG": "off",
    "SECRET_KEY": "a-long-random-production-secret",
    "ALLOWED_HOSTS": "kanri.example.com",
    "STRIPE_SECRET_KEY": "sk_live_" + "1" * 24,
    "DATABASE_URL": "postgres://kanri@db.example.com:5432/kanri",
    "REDIS_URL": "redis://cache.example.com:6379/0",
}

PRINT_SETTINGS = (
    "from django.conf import settings as s; "
    "print(s.DATABASES['default']['ENGINE'], s.Q_CLUSTER.get('redis'), s.Q_CLUSTER.get('orm'), "
    "s.STRIPE_LIVE_MODE, hasattr(s, 'STRIPE_API_HOST'))"
)


def load_settings(**env):
    """Import the settings in a fresh interpreter with exactly this environment."""
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + PRINT_SETTINGS],
        cwd=BASE_DIR,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_load_postgres_redis_and_live_stripe_from_the_environment():
    result = load_settings(**PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "config.postgresql",  # Django's, with a health check that costs no round trip
        "redis://cache.example.com:6379/0",
        "None",
        "True",
        "False",
    ]


def test_embedded_defaults_are_sqlite_and_the_orm_broker():
    result = load_settings(ENV_FILE="", DEBUG="on")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "None",
        "default",
        "False",
        "False",
    ]


def test_production_without_a_secret_key_stops_with_a_clear_message():
    result = load_settings(**{**PRODUCTION, "SECRET_KEY": ""})

    assert result.returncode != 0
    assert (
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not set. "
        "It is required when DEBUG is off; see .env.example." in result.stderr
    )


def test_production_without_a_stripe_key_stops_with_a_clear_message():
    env = {k: v for k, v in PRODUCTION.items() if k != "STRIPE_SECRET_KEY"}

    result = load_settings(**env)

    assert result.returncode != 0
    assert "ImproperlyConfigured: STRIPE_SECRET_KEY is not set." in result.stderr


def test_production_without_allowed_hosts_stops_with_a_clear_message():
    env = {k: v for k, v in PRODUCTION.items() if k != "ALLOWED_HOSTS"}

    result = load_settings(**env)

    assert result.returncode != 0
    assert "ImproperlyConfigured: ALLOWED_HOSTS is not set." in result.stderr


def test_every_variable_the_settings_read_is_documented_in_env_example():
    source = (BASE_DIR / "config" / "settings.py").read_text()
    documented = (BASE_DIR / ".env.example").read_text()

    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', source))
    read |= set(re.findall(r'required\(\s*"([A-Z_]+)"', source))

    assert read, "found no variables in settings.py"
    missing = sorted(name for name in read if not re.search(rf"^#? ?{name}=", documented, re.M))
    assert missing == []
