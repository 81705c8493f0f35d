#!/usr/bin/env python3
"""A receiving unit's system, for the local stack: takes avvik's webhook POSTs,
checks each signature as docs/notify.md describes (time, event type and body
under the endpoint's key, the time within --tolerance seconds of now),
answers 401 to one that fails, and prints one line a notification.

Usage: webhook_receiver.py [--record FILE] [--fail-first PERCENT] [--slow PERCENT]
                           [--slow-seconds SECONDS] [--tolerance SECONDS]
                           PORT_FILE SECRET_FILE [SECRET_FILE...]

The port it listens on, 127.0.0.1 and a free port, is written to PORT_FILE.
Each endpoint is /hook/<name> (the local stack names them by party, a test
may name a unit's by its HSA id); its secret is the file named
<name>-webhook.secret among the SECRET_FILEs.

The options make it a receiver a test can hold avvik notify to (the local
stack uses none of them):
  --record FILE          appends one JSON line per request to FILE: when it
                         was answered (Unix time), the endpoint,
                         the X-Avvik-Event-Id and X-Avvik-Event-Type headers,
                         the body's event id and deviation id, the SHA-256 of the
                         body, whether the signature was valid, the status answered;
                         for a DeviationFeedback (what the reporting party is
                         told) the body itself as "feedback"
  --fail-first PERCENT   answers 500 to the first request of PERCENT % of the
                         event ids (later ones are taken), so that retries happen
  --slow PERCENT         waits --slow-seconds (default 1) before answering every
                         request of PERCENT % of the event ids
The event ids that fail or are slow are chosen by a hash of the id, each with a
hash of its own, so the same ones on every run.
"""
import argparse
import hashlib
import hmac
import http.server
import json
import os
import threading
import time

parser = argparse.ArgumentParser(description="avvik's webhooks, as a receiving unit's system takes them")
parser.add_argument("--record", metavar="FILE", help="append one JSON line per request to FILE")
parser.add_argument("--fail-first", metavar="PERCENT", type=int, default=0,
                    help="answer 500 to the first request of PERCENT %% of the event ids")
parser.add_argument("--slow", metavar="PERCENT", type=int, default=0,
                    help="answer PERCENT %% of the event ids after --slow-seconds")
parser.add_argument("--slow-seconds", metavar="SECONDS", type=float, default=1.0)
parser.add_argument("--tolerance", metavar="SECONDS", type=int, default=300,
                    help="refuse a signature whose time is further from now (default 300)")
parser.add_argument("port_file")
parser.add_argument("secret_files", nargs="+")
args = parser.parse_args()

secrets = {}
for path in args.secret_files:
    party = os.path.basename(path).split("-webhook.secret")[0]
    with open(path, "rb") as f:
        secrets[party] = f.read().rstrip(b"\n")
taken = set()  # event ids answered 200
failed = set()  # event ids answered 500 on purpose (once each)
lock = threading.Lock()
record = open(args.record, "a", encoding="utf-8") if args.record else None


def verify(key, header, event_type, body):
    """Why X-Avvik-Signature header fails for event_type and body under key, or None
    when it holds: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.event_type.body">."""
    items = [item.partition("=") for item in header.split(",")]
    times = [value for name, _, value in items if name == "t"]
    v1s = [value for name, _, value in items if name == "v1"]
    if key is None:
        return "no key for this endpoint"
    if not times or not times[0].isdigit() or not v1s:
        return "not t=<unix seconds>,v1=<hex>"
    age = abs(time.time() - int(times[0]))
    if age > args.tolerance:
        return f"t is {age:.0f} s from now, more than {args.tolerance} s"
    signed = times[0].encode() + b"." + event_type.encode() + b"." + body
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, v1) for v1 in v1s):
        return "no v1 matches"
    return None


def chosen(event_id, what, percent):
    """Whether event_id is among the PERCENT % picked for what (fail, slow)."""
    digest = hashlib.sha256(f"{what}:{event_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        party = self.path.rsplit("/", 1)[-1]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        refused = verify(secrets.get(party), self.headers.get("X-Avvik-Signature", ""),
                         self.headers.get("X-Avvik-Event-Type", ""), body)
        valid = refused is None
        event_id = self.headers.get("X-Avvik-Event-Id", "")
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            doc = {}
        with lock:
            fail = valid and event_id not in failed and chosen(event_id, "fail", args.fail_first)
            if fail:
                failed.add(event_id)
            again = event_id in taken
            if valid and not fail:
                taken.add(event_id)
        status = 401 if not valid else 500 if fail else 200
        event_type = self.headers.get("X-Avvik-Event-Type", "")
        feedback = event_type == "DeviationFeedback"
        if valid and chosen(event_id, "slow", args.slow):
            time.sleep(args.slow_seconds)
        if record:
            line = json.dumps({"at": round(time.time(), 3), "endpoint": party, "event_id": event_id,
                               "event_type": self.headers.get("X-Avvik-Event-Type", ""),
                               "body_event_id": doc.get("event_id") or doc.get("escalation_id")
                               or doc.get("reminder_id"),
                               "deviation_id": doc.get("deviation_id"),
                               "body_sha256": hashlib.sha256(body).hexdigest(),
                               "signature": "valid" if valid else "invalid", "status": status,
                               "feedback": doc if feedback else None})
            with lock:
                record.write(line + "\n")
                record.flush()
        if not valid:
            self.send_response(401)
            self.end_headers()
            print(f"webhook {party}: signature INVALID ({refused}), refused", flush=True)
            return
        what = feedback and f"feedback {doc.get('kind')} (version {doc.get('version')})" or \
            doc.get("decision") and f"routed ({doc['decision']}, rule {doc.get('rule_id')})" or \
            doc.get("step") and f"escalated to {doc['step']} ({doc.get('reason')})" or \
            doc.get("kind") and f"reminder: {doc['kind']} deadline {doc.get('deadline_at')}" or "event"
        if fail:
            print(f"webhook {party}: deviation {doc.get('deviation_id')} {what}, signature valid, "
                  "answered 500 (a failure on purpose)", flush=True)
        else:
            again = " (a retry of one already taken)" if again else ""
            print(f"webhook {party}: deviation {doc.get('deviation_id')} {what}, signature valid{again}",
                  flush=True)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    # socketserver's backlog of 5 drops the connections of a burst of
    # notifications (a notifier catching up after a rebalance opens hundreds
    # at once): the clients would wait seconds for the SYN to be sent again.
    request_queue_size = 1024


server = Server(("127.0.0.1", 0), Hook)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(args.port_file + ".tmp", args.port_file)
server.serve_forever()
