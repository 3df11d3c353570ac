#!/usr/bin/env python3
"""SMTP catcher: accepts mail on an SMTP port and shows it over an HTTP API.

For local runs, tests and benchmarks of services/communication (mail through
its SMTP output binding). No auth, no TLS, nothing is delivered anywhere.

    SMTP_CATCHER_SMTP_PORT (2525)  SMTP_CATCHER_HTTP_PORT (8025)
    SMTP_CATCHER_HOST (127.0.0.1)  SMTP_CATCHER_MAX_MESSAGES (100000, oldest dropped)
    SMTP_CATCHER_RECEIPT_URL (none) SMTP_CATCHER_RECEIPT_SECRET (notify_local_sandbox)

Delivery events, as a mail provider's webhook would post them: when a receipt
URL is set, every accepted message that carries an `X-Notification-Id` header
is followed by a signed POST to that URL,
`{"id","message_id","reference":<X-Notification-Id>,"status":"delivered"|"undeliverable"}`
with `Notify-Signature: t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
(the notification sandbox's scheme). Recipients listed in `bounce` are accepted
at SMTP time and then reported `undeliverable` (an asynchronous hard bounce).
A refused or failed POST is retried with backoff (6 attempts).

HTTP API (JSON):
    GET    /api/messages?to=<addr>&limit=<n>  {"total":n,"messages":[{id,from,to,subject,text,html,headers,received_at}]}
           (`to` matches an envelope recipient, case-insensitively; oldest first)
    DELETE /api/messages                     clears
    POST   /api/config {"reject_next":n,"reject_code":451|550,"reject_at":"rcpt"|"data",
                        "bounce":[addr,..],"receipt_url":url|null,"receipt_secret":s}
    GET    /api/config, GET /api/stats, GET /healthz

SMTP runs on asyncio (aiosmtpd); the HTTP API on a thread of its own
(http.server), so a slow API reader never stalls mail. One lock guards the
shared state. SIGTERM/SIGINT stop both.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import concurrent.futures
import email
import email.parser
import email.policy
import email.utils
import hashlib
import hmac
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from aiosmtpd.smtp import SMTP

log = logging.getLogger("smtp-catcher")


class Catcher:
    """Caught messages, the rejection setting and counters."""

    def __init__(self, max_messages: int, receipt_url: str | None, receipt_secret: str) -> None:
        self.lock = threading.Lock()
        self.messages: collections.deque[Caught] = collections.deque(maxlen=max_messages)
        self.reject_next = 0
        self.reject_code = 451
        self.reject_at = "rcpt"
        self.bounce: set[str] = set()
        self.receipt_url = receipt_url
        self.receipt_secret = receipt_secret
        self.received = 0
        self.rejected = 0
        self.sessions = 0
        self.receipts_delivered = 0
        self.receipts_given_up = 0

    def config(self) -> dict:
        """The settable configuration (the secret is not shown)."""
        return {
            "reject_next": self.reject_next,
            "reject_code": self.reject_code,
            "reject_at": self.reject_at,
            "bounce": sorted(self.bounce),
            "receipt_url": self.receipt_url,
        }

    def take_rejection(self) -> tuple[int, str] | None:
        """Consumes one rejection for a new mail transaction, if any is due."""
        with self.lock:
            if self.reject_next <= 0:
                return None
            self.reject_next -= 1
            self.rejected += 1
            return self.reject_code, self.reject_at


def reply_for(code: int) -> str:
    if code < 500:
        return f"{code} 4.3.0 Temporary failure (smtp-catcher reject_next)"
    return f"{code} 5.7.1 Rejected (smtp-catcher reject_next)"


RECEIPT_ATTEMPTS = 6
RECEIPT_FIRST_DELAY = 0.05
RECEIPT_FIRST_BACKOFF = 0.25
REFERENCE_HEADER = "X-Notification-Id"


def sign(secret: str, t: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


class Receipts:
    """Posts delivery events on a few worker threads, never on the SMTP loop."""

    def __init__(self, catcher: Catcher) -> None:
        self.catcher = catcher
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="receipt")

    def after_accept(self, raw: bytes, rcpt_tos: list[str]) -> None:
        with self.catcher.lock:
            url, secret, bounce = self.catcher.receipt_url, self.catcher.receipt_secret, self.catcher.bounce
            bounced = any(rcpt.lower() in bounce for rcpt in rcpt_tos)
        if not url:
            return
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
        reference = headers.get(REFERENCE_HEADER)
        if not reference:
            return
        body = json.dumps({
            "id": f"rcpt_{uuid.uuid4().hex}",
            "message_id": str(headers.get("Message-ID", "")) or None,
            "reference": str(reference).strip(),
            "status": "undeliverable" if bounced else "delivered",
        }).encode()
        self.pool.submit(self.deliver, url, secret, body)

    def deliver(self, url: str, secret: str, body: bytes) -> None:
        time.sleep(RECEIPT_FIRST_DELAY)
        backoff = RECEIPT_FIRST_BACKOFF
        for attempt in range(1, RECEIPT_ATTEMPTS + 1):
            request = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/json",
                "Notify-Signature": sign(secret, int(time.time()), body),
            })
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except (OSError, ValueError) as error:
                status = None
                log.info("receipt not delivered (attempt %d): %s", attempt, error)
            if status is not None and 200 <= status < 300:
                with self.catcher.lock:
                    self.catcher.receipts_delivered += 1
                return
            if status is not None:
                log.info("receipt refused with HTTP %d (attempt %d)", status, attempt)
            if attempt < RECEIPT_ATTEMPTS:
                time.sleep(backoff)
                backoff *= 2
        with self.catcher.lock:
            self.catcher.receipts_given_up += 1
        log.warning("receipt given up after %d attempts", RECEIPT_ATTEMPTS)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class Caught:
    """One accepted message: the envelope at once, the MIME parse on first
    read (parsing costs more than the whole SMTP exchange, and a benchmark
    pushing hundreds of mails per second reads few of them)."""

    __slots__ = ("id", "mail_from", "rcpt_tos", "received_at", "raw", "_view")

    def __init__(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        self.id = str(uuid.uuid4())
        self.mail_from = mail_from
        self.rcpt_tos = rcpt_tos
        self.received_at = (
            datetime.datetime.now(datetime.timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        self.raw = raw
        self._view: dict | None = None

    def addressed_to(self, address: str) -> bool:
        return any(rcpt.lower() == address for rcpt in self.rcpt_tos)

    def view(self) -> dict:
        """The API's view: envelope plus decoded subject, bodies and headers."""
        if self._view is None:
            self._view = {
                "id": self.id,
                "from": self.mail_from,
                "to": list(self.rcpt_tos),
                "received_at": self.received_at,
                **parse_content(self.raw),
            }
        return self._view


def parse_content(raw: bytes) -> dict:
    text = html = None
    headers: dict[str, str] = {}
    subject = ""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for name, value in msg.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else str(value)
        subject = str(msg.get("Subject", ""))
        part = msg.get_body(preferencelist=("plain",))
        if part is not None:
            text = part.get_content().replace("\r\n", "\n")
        part = msg.get_body(preferencelist=("html",))
        if part is not None:
            html = part.get_content().replace("\r\n", "\n")
    except Exception as error:  # a malformed message is still caught, raw
        log.warning("cannot parse a message: %s", error)
        text = raw.decode("utf-8", "replace")
    return {"subject": subject, "text": text, "html": html, "headers": headers}


class Handler:
    """aiosmtpd hooks: rejections on demand, every accepted mail kept."""

    def __init__(self, catcher: Catcher, receipts: Receipts) -> None:
        self.catcher = catcher
        self.receipts = receipts

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        """Counts SMTP sessions (a client reusing sessions opens few)."""
        session.host_name = hostname
        with self.catcher.lock:
            self.catcher.sessions += 1
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.rejection = self.catcher.take_rejection()
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        rejection = getattr(envelope, "rejection", None)
        if rejection is not None and rejection[1] == "rcpt":
            return reply_for(rejection[0])
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        rejection = getattr(envelope, "rejection", None)
        if rejection is not None:
            return reply_for(rejection[0])
        raw = envelope.original_content or envelope.content or b""
        message = Caught(envelope.mail_from, list(envelope.rcpt_tos), raw)
        with self.catcher.lock:
            self.catcher.messages.append(message)
            self.catcher.received += 1
        self.receipts.after_accept(raw, message.rcpt_tos)
        return "250 Message accepted for delivery"


def make_http_handler(catcher: Catcher):
    class Api(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "smtp-catcher"

        def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
            log.debug("http %s", format % args)

        def reply(self, status: int, body: object | None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status: int, code: str, message: str) -> None:
            self.reply(status, {"error": {"code": code, "message": message}})

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            if url.path == "/healthz":
                self.reply(200, {"status": "ok"})
            elif url.path == "/api/messages":
                to = (query.get("to") or [None])[0]
                try:
                    limit = int((query.get("limit") or ["0"])[0])
                except ValueError:
                    return self.error(400, "invalid_request", "limit must be an integer")
                with catcher.lock:
                    found = list(catcher.messages)
                if to:
                    to = to.strip().lower()
                    found = [m for m in found if m.addressed_to(to)]
                total = len(found)
                if limit > 0:
                    found = found[:limit]
                self.reply(200, {"total": total, "messages": [m.view() for m in found]})
            elif url.path == "/api/config":
                with catcher.lock:
                    self.reply(200, catcher.config())
            elif url.path == "/api/stats":
                with catcher.lock:
                    self.reply(200, {
                        "received": catcher.received,
                        "rejected": catcher.rejected,
                        "stored": len(catcher.messages),
                        "sessions": catcher.sessions,
                        "receipts_delivered": catcher.receipts_delivered,
                        "receipts_given_up": catcher.receipts_given_up,
                    })
            else:
                self.error(404, "not_found", f"no route {url.path}")

        def do_DELETE(self) -> None:
            if urlparse(self.path).path != "/api/messages":
                return self.error(404, "not_found", "no such route")
            with catcher.lock:
                catcher.messages.clear()
            self.reply(204, None)

        def do_POST(self) -> None:
            if urlparse(self.path).path != "/api/config":
                return self.error(404, "not_found", "no such route")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be an object")
                unknown = set(body) - {"reject_next", "reject_code", "reject_at", "bounce", "receipt_url", "receipt_secret"}
                if unknown:
                    raise ValueError(f"unknown fields {sorted(unknown)}")
                reject_next = body.get("reject_next")
                reject_code = body.get("reject_code")
                reject_at = body.get("reject_at")
                if reject_next is not None and (type(reject_next) is not int or reject_next < 0):
                    raise ValueError("reject_next must be a non-negative integer")
                if reject_code is not None and (type(reject_code) is not int or not 400 <= reject_code <= 599):
                    raise ValueError("reject_code must be a 4xx (temporary) or 5xx (permanent) SMTP code")
                if reject_at is not None and reject_at not in ("rcpt", "data"):
                    raise ValueError('reject_at must be "rcpt" or "data"')
                bounce = body.get("bounce")
                if bounce is not None and (not isinstance(bounce, list) or not all(isinstance(a, str) and "@" in a for a in bounce)):
                    raise ValueError("bounce must be a list of email addresses")
                receipt_url = body.get("receipt_url", ...)
                if receipt_url is not ... and receipt_url is not None and (
                    not isinstance(receipt_url, str) or urlparse(receipt_url).scheme not in ("http", "https")
                ):
                    raise ValueError("receipt_url must be an http(s) URL or null")
                receipt_secret = body.get("receipt_secret")
                if receipt_secret is not None and (not isinstance(receipt_secret, str) or not receipt_secret):
                    raise ValueError("receipt_secret must be a non-empty string")
            except ValueError as error:
                return self.error(400, "invalid_request", str(error))
            with catcher.lock:
                if reject_next is not None:
                    catcher.reject_next = reject_next
                if reject_code is not None:
                    catcher.reject_code = reject_code
                if reject_at is not None:
                    catcher.reject_at = reject_at
                if bounce is not None:
                    catcher.bounce = {a.strip().lower() for a in bounce}
                if receipt_url is not ...:
                    catcher.receipt_url = receipt_url
                if receipt_secret is not None:
                    catcher.receipt_secret = receipt_secret
                config = catcher.config()
            log.info("configured: %s", config)
            self.reply(200, config)

    return Api


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        sys.exit(f"smtp-catcher: {name}={value!r} is not an integer")


async def main() -> None:
    logging.basicConfig(
        level=os.environ.get("SMTP_CATCHER_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiosmtpd logs every connection at INFO: too much at hundreds per second.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    host = os.environ.get("SMTP_CATCHER_HOST", "127.0.0.1")
    smtp_port = env_int("SMTP_CATCHER_SMTP_PORT", 2525)
    http_port = env_int("SMTP_CATCHER_HTTP_PORT", 8025)
    catcher = Catcher(
        env_int("SMTP_CATCHER_MAX_MESSAGES", 100_000),
        os.environ.get("SMTP_CATCHER_RECEIPT_URL", "").strip() or None,
        os.environ.get("SMTP_CATCHER_RECEIPT_SECRET", "").strip() or "notify_local_sandbox",
    )
    receipts = Receipts(catcher)

    http = ThreadingHTTPServer((host, http_port), make_http_handler(catcher))
    http.daemon_threads = True
    loop = asyncio.get_running_loop()
    handler = Handler(catcher, receipts)
    smtp = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp-catcher", ident="smtp-catcher", enable_SMTPUTF8=True, data_size_limit=25 * 1024 * 1024),
        host=host,
        port=smtp_port,
        reuse_address=True,
        backlog=1024,
    )
    threading.Thread(target=http.serve_forever, name="http", daemon=True).start()
    log.info("listening: smtp %s:%d, http %s:%d", host, smtp_port, host, http_port)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    smtp.close()
    await smtp.wait_closed()
    http.shutdown()
    http.server_close()
    receipts.shutdown()
    log.info("stopped")


if __name__ == "__main__":
    asyncio.run(main())
