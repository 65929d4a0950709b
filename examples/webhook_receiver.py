#!/usr/bin/env python3
"""A small webhook receiver for Switchboard: verifies each delivery's Standard
Webhooks signature and prints the event. Standard library only.

    WEBHOOK_SECRET=whsec_... python3 examples/webhook_receiver.py [PORT]
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["WEBHOOK_SECRET"]
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))
TOLERANCE = 300  # seconds either way, as Standard Webhooks recommends
seen = set()  # webhook-ids already handled: delivery is at least once


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        msg_id = self.headers.get("webhook-id", "")
        timestamp = self.headers.get("webhook-timestamp", "0")
        signed = f"{msg_id}.{timestamp}.".encode() + body
        expected = "v1," + base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
        signatures = self.headers.get("webhook-signature", "").split()
        fresh = abs(time.time() - int(timestamp)) <= TOLERANCE
        if not fresh or not any(hmac.compare_digest(s, expected) for s in signatures):
            self.send_response(401)
            self.end_headers()
            print("refused a delivery with a bad signature", flush=True)
            return
        self.send_response(204)
        self.end_headers()
        if msg_id in seen:
            return
        seen.add(msg_id)
        event = json.loads(body)
        data = event["data"]
        if event["type"] == "instance.status":
            line = f"{data['instance_id'][:8]} {data['previous']} -> {data['status']}"
            if data.get("prompt"):
                line += f"  asks: {data['prompt']!r}"
            if data.get("exit_code") is not None:
                line += f"  exit code {data['exit_code']}"
        else:
            line = json.dumps(data)
        print(f"[{event['id']}] {event['type']}: {line}", flush=True)

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
print(f"listening on http://127.0.0.1:{port}/", flush=True)
HTTPServer(("127.0.0.1", port), Handler).serve_forever()
