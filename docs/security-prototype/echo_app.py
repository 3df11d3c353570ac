#!/usr/bin/env python3
"""Stand-in app (ECHO_LOG=1: also prints each request as a JSON line): answers every request with JSON describing what arrived
(method, path with raw query, the headers the checks care about, body size).
  echo_app.py PORT [NAME]"""
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[2] if len(sys.argv) > 2 else "app"
SHOW = ("authorization", "dapr-api-token", "x-forwarded-for", "traceparent", "dapr-app-id",
        "x-client-id", "x-dapr-opa-error", "content-type", "dapr-caller-app-id", "forwarded", "x-forwarded-host")

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response: headers and body in separate segments meet
    # Nagle + delayed ACK on the sidecar's keep-alive connection (+40 ms).
    wbufsize = 65536
    def handle_one(self):
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size); self.rfile.readline()
                if size == 0: break
                body += chunk
        else:
            n = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(n) if n else b""
        out = json.dumps({"app": NAME, "method": self.command, "path": self.path, "body_bytes": len(body),
                          "headers": {k: v for k, v in self.headers.items() if k.lower() in SHOW}}).encode()
        if self.path == "/dapr/subscribe":  # no programmatic subscriptions
            out = b"[]"
        if os.environ.get("ECHO_LOG"):
            print(out.decode(), flush=True)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_one
    def log_message(self, *a): pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
