"""Fake Slack Web API for tests: a stdlib HTTP server that slack-sdk talks to via base_url.

It records every call (method name, JSON or form body, auth header) and answers like
Slack: {"ok": true, ...}. `fail_next(error, status=200, headers=None)` makes the next
call fail the way Slack does (`{"ok": false, "error": "channel_not_found"}`, or a 429
with Retry-After).
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


class FakeSlack:
    def __init__(self):
        self.calls = []
        self.failures = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
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
                    message = {"text": body.get("text", ""), "ts": ts}
                    self._answer(
                        200,
                        {"ok": True, "channel": body.get("channel"), "ts": ts, "message": message},
                    )
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
