"""A stand-in for the Slack Web API: a stdlib HTTP server that slack-sdk talks to via base_url.

`make run` starts one on loopback (`python -m integrations.devstack.slack_api PORT`) when
SLACK_API_URL points at this machine, so a Slack step works without a Slack workspace;
the test suite starts one per test (the `fake_slack` fixture).

It records every call (method name, JSON or form body, auth header) and answers like
Slack: {"ok": true, ...}; `auth.test` names a made-up workspace. `fail_next(error,
status=200, headers=None)` makes the next call fail the way Slack does (`{"ok": false,
"error": "channel_not_found"}`, or a 429 with Retry-After). GET /_kanri/messages lists the
messages posted (channel, text, ts, received_at), newest last, for the admin's page.
"""

import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

MESSAGES_PATH = "/_kanri/messages"
TEAM = {"team": "Kanri local", "team_id": "T0KANRI", "user": "kanri", "user_id": "U0KANRI"}
# Keep the newest messages only: a stand-in left running for days must not grow forever.
KEEP = 1000


class FakeSlack:
    def __init__(self, port=0):
        self.calls = []
        self.failures = []
        self.posted = []  # chat.postMessage calls answered ok: channel, text, ts, received_at
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, error, status=200, headers=None, times=1):
        """Answer the next `times` calls with a Slack error (`error` None: answer normally,
        to script a sequence of failures and successes)."""
        with self.lock:
            self.failures.extend([(error, status, headers or {})] * times)

    def messages(self):
        """Return the bodies of chat.postMessage calls, in order."""
        return [c["body"] for c in self.calls if c["method"] == "chat.postMessage"]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != MESSAGES_PATH:
                    self._answer(404, {"ok": False, "error": "unknown_method"})
                    return
                with fake.lock:
                    posted = list(fake.posted)
                self._answer(200, {"ok": True, "messages": posted})

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    body = json.loads(raw or "{}")
                else:
                    body = dict(parse_qsl(raw))
                method = self.path.rsplit("/", 1)[-1]
                with fake.lock:
                    fake.calls.append(
                        {"method": method, "body": body, "auth": self.headers.get("Authorization")}
                    )
                    failure = fake.failures.pop(0) if fake.failures else None
                if failure and failure[0] is not None:
                    error, status, headers = failure
                    self._answer(status, {"ok": False, "error": error}, headers)
                elif method == "chat.postMessage":
                    ts = f"1700000000.{len(fake.calls):06d}"
                    channel = body.get("channel")
                    message = {"text": body.get("text", ""), "ts": ts}
                    with fake.lock:
                        fake.posted.append(
                            {**message, "channel": channel, "received_at": time.time()}
                        )
                        del fake.posted[:-KEEP]
                    self._answer(
                        200, {"ok": True, "channel": channel, "ts": ts, "message": message}
                    )
                elif method == "auth.test":
                    # https://api.slack.com/methods/auth.test: who the token belongs to.
                    url = "https://kanri-local.slack.com/"
                    self._answer(200, {"ok": True, "url": url, **TEAM, "bot_id": "B0KANRI"})
                else:
                    self._answer(200, {"ok": True})

            def _answer(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


def stand_in_url(api_url):
    """Return where a stand-in at `api_url` lists its messages, or "" when `api_url` is
    not on this machine (it is Slack itself)."""
    parts = urlsplit(api_url or "")
    if parts.hostname not in ("127.0.0.1", "localhost"):
        return ""
    return f"{parts.scheme}://{parts.netloc}{MESSAGES_PATH}"


def received_messages(url, timeout=5):
    """Return the messages a stand-in received (oldest first); raise OSError if it is down."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())["messages"]


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 12112
    slack = FakeSlack(port)
    print(f"Local Slack stand-in on {slack.base_url}", flush=True)
    try:
        slack.server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        slack.server.server_close()


if __name__ == "__main__":
    main()
