"""A loopback proxy in front of a real OpenAI-compatible server that rewrites every answer to a fixed text.

The request goes to the real server (as a non-streaming call, so the real model really answers); the client then
gets ``text`` instead of the model's words, streamed back in the server's own SSE chunk shape. This is how the
tests make a real stack meet the degenerate answers small models give (``[1]``) on demand. ``requests`` keeps
each forwarded request body, so a test can see what the client asked the second time. With ``times`` only the
first ``times`` answers are rewritten; later ones are the real model's words, in the same shape. With
``word_by_word`` the text is streamed a word per chunk, as a model writes it, and ``hung_up`` tells whether the
client closed the stream before its end.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class RewritingProxy:
    def __init__(self, upstream: str, text: str, times: int | None = None, word_by_word: bool = False) -> None:
        self.upstream = upstream.rstrip("/")
        self.text = text
        self.times = times
        self.word_by_word = word_by_word
        self.hung_up = False
        self.requests: list[dict] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                r = httpx.get(proxy.upstream + self.path.removeprefix("/v1"), timeout=60)
                self._send(r.status_code, r.headers.get("content-type", "application/json"), r.content)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0) or 0)))
                proxy.requests.append(body)
                stream = body.pop("stream", False)
                body.pop("stream_options", None)
                real = httpx.post(proxy.upstream + "/chat/completions", json=body, timeout=300).json()
                rewrite = proxy.times is None or len(proxy.requests) <= proxy.times
                text = proxy.text if rewrite else real["choices"][0]["message"]["content"]
                if not stream:
                    real["choices"][0]["message"]["content"] = text
                    self._send(200, "application/json", json.dumps(real).encode())
                    return
                pieces = re.findall(r"\S+\s*", text) if proxy.word_by_word else [text]
                chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": p}}]} for p in pieces]
                chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                head = {"id": real.get("id", "x"), "object": "chat.completion.chunk", "created": real.get("created", 0)}
                events = [f"data: {json.dumps({**head, 'model': real.get('model', 'm'), **c})}\n\n" for c in chunks]
                events.append("data: [DONE]\n\n")
                if not proxy.word_by_word:
                    self._send(200, "text/event-stream", "".join(events).encode())
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")  # no length: the stream ends when the connection does
                self.end_headers()
                try:
                    for event in events:
                        self.wfile.write(event.encode())
                        self.wfile.flush()
                        time.sleep(0.01)  # a model's pace, so a client that stops reading is seen to hang up
                except (BrokenPipeError, ConnectionResetError):
                    proxy.hung_up = True
                self.close_connection = True

            def _send(self, status: int, kind: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> RewritingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
