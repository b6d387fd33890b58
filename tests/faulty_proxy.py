"""A loopback HTTP proxy in front of a real server that misbehaves on purpose.

Each request is forwarded unless a rule fires first:
* ``first_faults``: the first requests get these faults in order ("500", "stall", "close"), then all pass;
* ``poison``: any request whose body contains this text always gets a 500.
Faults: "500" answers HTTP 500; "stall" waits ``stall_s`` seconds, then drops the connection (a client timeout);
"close" drops the connection without answering. ``events`` records what happened, in order.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class FaultyProxy:
    def __init__(
        self, upstream: str, first_faults: list[str] | None = None, poison: str | None = None, stall_s: float = 4.0
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = list(first_faults or [])
        self.poison = poison
        self.stall_s = stall_s
        self.events: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _fault(self, body: bytes) -> str | None:
                if proxy.poison and proxy.poison.encode() in body:
                    return "500"
                with proxy._lock:
                    return proxy.faults.pop(0) if proxy.faults else None

            def _relay(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                fault = self._fault(body) if method == "POST" else None
                proxy.events.append(fault or "ok")
                if fault == "500":
                    data = b'{"error": {"message": "injected failure", "code": 500}}'
                    self.send_response(500)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if fault in ("stall", "close"):
                    if fault == "stall":
                        time.sleep(proxy.stall_s)
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                r = httpx.request(method, proxy.upstream + self.path, content=body, headers=headers, timeout=300)
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            def do_GET(self) -> None:
                self._relay("GET")

            def do_POST(self) -> None:
                self._relay("POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
