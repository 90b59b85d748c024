"""The fake Slack Web API lives in integrations/devstack/slack_api.py, with the other local
stand-ins (application code never imports tests/); this name keeps old imports working."""

from integrations.devstack.slack_api import FakeSlack

__all__ = ["FakeSlack"]
