#!/usr/bin/env python3
"""A relay that loses chosen answers: the request reaches the backend (which commits it), but
the client gets 504 Gateway Timeout instead of the backend's answer.

usage: python proxy504.py LISTEN_PORT UPSTREAM_PORT RULES

Every request (method, path, headers, body) goes to 127.0.0.1:UPSTREAM_PORT and its answer
comes back, always with Content-Length, on a kept-alive HTTP/1.1 connection. RULES is a
comma-separated list of NAME:WHEN, counting the POSTs whose path ends with `NAME/`:
  sequences:1      the 1st such POST gets 504 (after it was forwarded and answered)
  films:5          the 5th
  films:every      every one
  films:every3     every 3rd (3rd, 6th, ...)
An empty RULES (or `none`) relays everything. Prints "proxy ready" once listening.
Stdlib only.
"""

import http.client
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
              "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding",
              "upgrade", "expect", "content-length"}
TIMEOUT_BODY = b'{"detail":"upstream timed out"}'


def parse_rules(text):
    """{name: (set of ordinals, list of every-N)}"""
    rules = {}
    for rule in filter(None, (r.strip() for r in text.split(","))):
        if rule == "none":
            continue
        name, sep, when = rule.partition(":")
        if not sep or not name:
            raise SystemExit(f"bad rule {rule!r}: expected NAME:N, NAME:every or NAME:everyN")
        ordinals, every = rules.setdefault(name.strip("/"), (set(), []))
        if when.startswith("every"):
            n = int(when[len("every"):] or 1)
            if n < 1:
                raise SystemExit(f"bad rule {rule!r}: everyN needs N >= 1")
            every.append(n)
        else:
            n = int(when)
            if n < 1:
                raise SystemExit(f"bad rule {rule!r}: N counts from 1")
            ordinals.add(n)
    return rules


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream_port = 0
    rules = {}
    counts = {}
    lock = threading.Lock()

    def log_message(self, format, *args):  # quiet: only the 504s it makes are logged
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def times_out(self):
        """Whether this request's answer is to be replaced by a 504 (counts it)."""
        if self.command != "POST":
            return False
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        for name, (ordinals, every) in self.rules.items():
            if path.endswith(name + "/"):
                with self.lock:
                    n = self.counts[name] = self.counts.get(name, 0) + 1
                return n in ordinals or any(n % k == 0 for k in every)
        return False

    def handle_any(self):
        body = self.read_body()
        timeout = self.times_out()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            answer_body = answer.read()
        except (OSError, http.client.HTTPException) as e:
            self.reply(502, [], b'{"detail":"upstream unreachable: %s"}' % str(e).encode())
            return
        finally:
            upstream.close()
        if timeout:
            sys.stderr.write(f"proxy504: 504 for {self.command} {self.path} "
                             f"(upstream answered {answer.status})\n")
            self.reply(504, [], TIMEOUT_BODY, reason="Gateway Timeout")
            return
        kept = [(k, v) for k, v in answer.getheaders()
                if k.lower() not in HOP_BY_HOP | {"date", "server"}]
        if self.command == "HEAD" or answer.status in (204, 304) or answer.status < 200:
            length = answer.getheader("Content-Length")  # bodiless: HEAD keeps the length
            kept += [("Content-Length", length)] if length and self.command == "HEAD" else []
            self.reply(answer.status, kept, None, reason=answer.reason)
        else:
            self.reply(answer.status, kept, answer_body, reason=answer.reason)

    def reply(self, status, headers, body, reason=None):
        self.send_response(status, reason)
        if body is not None and not any(k.lower() == "content-type" for k, _ in headers):
            if status in (502, 504):
                headers = headers + [("Content-Type", "application/json")]
        for k, v in headers:
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:  # the client asked for it (Connection: close, HTTP/1.0)
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    Proxy.upstream_port = int(sys.argv[2])
    Proxy.rules = parse_rules(sys.argv[3] if len(sys.argv) == 4 else "")
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Proxy)
    server.daemon_threads = True
    print("proxy ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
