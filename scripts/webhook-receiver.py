#!/usr/bin/env python3
"""A breachdex webhook receiver that checks both signatures (README "Monitoring: webhooks").

Usage: BREACHDEX_WEBHOOK_SECRET=whsec_... scripts/webhook-receiver.py [PORT]
Prints "listening on PORT" to stderr, then one line per verified event to stdout:
the event name and its data as JSON. Answers 204 to a verified event, 401 otherwise.
Python standard library only.
"""
import hashlib
import hmac
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["BREACHDEX_WEBHOOK_SECRET"].encode("utf-8")


def sign(message):
    return "sha256=" + hmac.new(SECRET, message, hashlib.sha256).hexdigest()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        payload = json.loads(body)
        # The header signs the body as sent; the body's "signature" member signs the body
        # without that member: its last 87 bytes replaced by "}".
        ok = hmac.compare_digest(self.headers.get("X-Breachdex-Signature", ""), sign(body)) and hmac.compare_digest(
            payload.get("signature", ""), sign(body[:-87] + b"}")
        )
        self.send_response(204 if ok else 401)
        self.end_headers()
        if ok:
            print(payload["event"], json.dumps(payload["data"], sort_keys=True), flush=True)
        else:
            print("REJECTED: bad signature", file=sys.stderr, flush=True)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9000), Hook)
print("listening on", server.server_address[1], file=sys.stderr, flush=True)
server.serve_forever()
