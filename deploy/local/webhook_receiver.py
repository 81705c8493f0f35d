#!/usr/bin/env python3
"""A receiving unit's system, for the local stack: takes avvik's webhook POSTs,
checks each signature as docs/notify.md describes and prints one line a
notification. Usage: webhook_receiver.py PORT_FILE SECRET_FILE [SECRET_FILE...]
(the port it listens on, 127.0.0.1 and a free port, is written to PORT_FILE).
Each party's endpoint is /hook/<party>; its secret is the file named
<party>-webhook.secret among the SECRET_FILEs."""
import hashlib
import hmac
import http.server
import json
import os
import sys

secrets = {}
for path in sys.argv[2:]:
    party = os.path.basename(path).split("-webhook.secret")[0]
    with open(path, "rb") as f:
        secrets[party] = f.read().rstrip(b"\n")
seen = set()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        party = self.path.rsplit("/", 1)[-1]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        key = secrets.get(party)
        expected = "sha256=" + hmac.new(key or b"", body, hashlib.sha256).hexdigest()
        if key is None or not hmac.compare_digest(expected, self.headers.get("X-Avvik-Signature", "")):
            self.send_response(401)
            self.end_headers()
            print(f"webhook {party}: signature INVALID, refused", flush=True)
            return
        event_id = self.headers.get("X-Avvik-Event-Id", "")
        doc = json.loads(body)
        what = doc.get("decision") and f"routed ({doc['decision']}, rule {doc.get('rule_id')})" or \
            doc.get("step") and f"escalated to {doc['step']} ({doc.get('reason')})" or \
            doc.get("kind") and f"reminder: {doc['kind']} deadline {doc.get('deadline_at')}" or "event"
        again = " (a retry of one already taken)" if event_id in seen else ""
        seen.add(event_id)
        print(f"webhook {party}: deviation {doc.get('deviation_id')} {what}, signature valid{again}",
              flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
