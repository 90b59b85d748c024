"""Times in the reader's zone, always with the zone named: the site's TIME_ZONE, or the user's."""

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.utils import timezone

from automations.models import Run, UserProfile
from automations.templates import personalise_large_orders
from automations.timefmt import format_time
from tests.admin_helpers import staff_user
from tests.builders import create_workflow

NINE_PM_TOKYO = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("UTC", "2026-12-01 12:00 UTC"),
        ("Asia/Tokyo", "2026-12-01 21:00 JST"),
        ("America/New_York", "2026-12-01 07:00 EST"),
        ("Europe/Paris", "2026-12-01 13:00 CET"),
    ],
)
def test_a_time_is_shown_in_the_active_zone_with_its_abbreviation(zone, shown):
    with timezone.override(zone):
        assert format_time(NINE_PM_TOKYO) == shown


def test_a_stripe_timestamp_and_a_template_filter_show_the_same(settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    rendered = Template("{% load kanri %}{{ at|when }} / {{ ts|when }} / {{ none|when }}").render(
        Context({"at": NINE_PM_TOKYO, "ts": int(NINE_PM_TOKYO.timestamp()), "none": None})
    )
    assert rendered == "2026-12-01 21:00 JST / 2026-12-01 21:00 JST / "


def test_django_renders_datetimes_with_their_zone_too(settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    assert Template("{{ at }}").render(Context({"at": NINE_PM_TOKYO})) == "2026-12-01 21:00 JST"


def run_list(client, db):
    workflow = create_workflow(personalise_large_orders(), status="active")
    Run.objects.create(
        workflow=workflow,
        version=workflow.active_version,
        trigger_key="evt_1",
        trigger_data={},
        created_at=NINE_PM_TOKYO,
    )
    return client.get("/admin/automations/run/").content.decode()


def test_pages_use_the_sites_time_zone_by_default(client, db, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    client.force_login(staff_user("viewer"))
    assert "2026-12-01 21:00 JST" in run_list(client, db)


def test_a_users_own_time_zone_wins_over_the_sites(client, db, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    user = staff_user("viewer")
    UserProfile.objects.create(user=user, time_zone="Europe/Paris")
    client.force_login(user)

    page = run_list(client, db)

    assert "2026-12-01 13:00 CET" in page and "JST" not in page


def test_a_person_chooses_their_time_zone_and_language_under_my_preferences(client, db):
    user = staff_user("viewer")
    client.force_login(user)
    page = client.get("/admin/preferences/").content.decode()
    assert '<option value="Asia/Tokyo">Asia/Tokyo</option>' in page
    assert "The site&#x27;s time zone (UTC)" in page

    response = client.post("/admin/preferences/", {"language": "ja", "time_zone": "Asia/Tokyo"})

    assert response.status_code == 302
    profile = UserProfile.objects.get(user=user)
    assert (profile.language, profile.time_zone) == ("ja", "Asia/Tokyo")
    assert "設定を保存しました" in client.get("/admin/preferences/").content.decode()


def test_a_time_zone_that_does_not_exist_is_refused(client, db):
    client.force_login(staff_user("viewer"))
    response = client.post("/admin/preferences/", {"language": "", "time_zone": "Mars/Olympus"})
    assert response.status_code == 200
    assert not UserProfile.objects.exists()
    assert "Mars/Olympus" in response.content.decode()
