# Every time Django renders (admin lists, read-only fields) names its zone: "2026-12-01 21:00
# JST". T is the zone's abbreviation in the active time zone (automations/timefmt.py).
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
