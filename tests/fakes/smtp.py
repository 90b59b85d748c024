"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

import socket
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller


class SmtpSink:
    def __init__(self):
        self.messages = []  # (envelope sender, recipients, parsed message)
        self.refuse = 0  # refuse this many deliveries with `refusal`
        self.refusal = "451 Requested action aborted: local error in processing"
        with socket.socket() as s:  # aiosmtpd needs a concrete port to probe its own start
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            self.refuse -= 1
            return self.refusal
        # SMTP carries CRLF line ends; tests compare with Python's "\n".
        raw = envelope.original_content.replace(b"\r\n", b"\n")
        message = message_from_bytes(raw, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"
