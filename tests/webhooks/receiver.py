"""A webhook receiver for Mailwright's tests, verifying every delivery with
the Standard Webhooks reference library (PyPI `standardwebhooks`).

    python3 tests/webhooks/receiver.py      # prints "listening <port>"

POST /_control {"secret": "whsec_...", "fail_first": {"<event type>": n}}
    sets the secret to verify with, and how many deliveries of an event type
    to answer 500 before answering 204.
POST /hook           a delivery: verified, recorded, answered.
GET  /_received      every delivery so far: [{"id", "type", "verified",
                     "answered", "body"}].
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

state = {"secret": None, "fail_first": {}, "received": []}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/_received":
            return self._answer(404)
        with lock:
            body = json.dumps(state["received"]).encode()
        self._answer(200, body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path == "/_control":
            control = json.loads(body)
            with lock:
                state["secret"] = control.get("secret", state["secret"])
                state["fail_first"].update(control.get("fail_first", {}))
            return self._answer(204)
        if self.path != "/hook":
            return self._answer(404)
        headers = {name.lower(): value for name, value in self.headers.items()}
        with lock:
            secret = state["secret"]
        verified = False
        event = None
        try:
            event = Webhook(secret).verify(body, headers)
            verified = True
        except Exception as error:  # the reference library's refusal
            sys.stderr.write(f"refused: {error}\n")
        event_type = (event or {}).get("type")
        with lock:
            remaining = state["fail_first"].get(event_type, 0)
            answered = 500 if remaining > 0 else (204 if verified else 401)
            if remaining > 0:
                state["fail_first"][event_type] = remaining - 1
            state["received"].append(
                {
                    "id": headers.get("webhook-id"),
                    "type": event_type,
                    "verified": verified,
                    "answered": answered,
                    "body": body.decode("utf-8", "replace"),
                }
            )
        self._answer(answered, b'{"error": "try again"}' if answered == 500 else b"")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
