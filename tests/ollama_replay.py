"""A loopback server that replays Ollama's native /api responses.

Ollama cannot run on this machine (no package, and no llama.cpp server speaks /api/*), so the Ollama backend is
tested against this replay. The response shapes are Ollama's documented ones (docs/api.md: /api/chat streaming
and non-streaming, /api/tags, /api/show, /api/pull progress stream); the values are recorded examples. Every
request body is kept in ``requests`` so tests can check what the client sent (num_ctx, format schema).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIGEST = "sha256:365c0bd3c000a25d28ddbf732fe1c6add414de7275464c4e4d1c3b5fcb5d8ad1"
CREATED = "2024-07-22T20:34:13.123456Z"
DONE_STATS = {
    "total_duration": 4883583458,
    "load_duration": 1334875,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 342546000,
    "eval_count": 12,
    "eval_duration": 4535599000,
}
SHOW = {
    "modelfile": "FROM llama3\n",
    "parameters": "num_ctx 2048",
    "template": "{{ .Prompt }}",
    "details": {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_0",
    },
    "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
}


class OllamaReplay:
    """Start with ``with OllamaReplay(models=["llama3"]) as o: o.host``."""

    def __init__(
        self,
        models: list[str],
        answer: str = "Paris is the capital of France.",
        json_answer: dict[str, Any] | None = None,
        fail_first: int = 0,
    ) -> None:
        self.models = set(models)
        self.answer = answer
        self.json_answer = json_answer or {"query": "what is the capital of france"}
        self.fail_first = fail_first
        self.requests: list[tuple[str, dict[str, Any]]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, ndjson: bool = False) -> None:
                data = ("".join(json.dumps(b) + "\n" for b in body) if ndjson else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-ndjson" if ndjson else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                replay.requests.append((self.path, {}))
                if self.path == "/api/tags":
                    self._send(
                        200,
                        {
                            "models": [
                                {
                                    "name": f"{m}:latest",
                                    "model": f"{m}:latest",
                                    "modified_at": CREATED,
                                    "size": 4661224676,
                                    "digest": DIGEST[7:],
                                    "details": SHOW["details"],
                                }
                                for m in sorted(replay.models)
                            ]
                        },
                    )
                else:
                    self._send(404, {"error": "404 page not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                replay.requests.append((self.path, body))
                name = body.get("model", "").removesuffix(":latest")
                if self.path == "/api/show":
                    if name in replay.models:
                        self._send(200, SHOW)
                    else:
                        self._send(404, {"error": f"model '{name}' not found"})
                elif self.path == "/api/pull":
                    replay.models.add(name)
                    digest = "sha256:6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa"
                    self._send(
                        200,
                        [
                            {"status": "pulling manifest"},
                            {
                                "status": f"pulling {digest[7:19]}",
                                "digest": digest,
                                "total": 4661211808,
                                "completed": 2330605904,
                            },
                            {
                                "status": f"pulling {digest[7:19]}",
                                "digest": digest,
                                "total": 4661211808,
                                "completed": 4661211808,
                            },
                            {"status": "verifying sha256 digest"},
                            {"status": "writing manifest"},
                            {"status": "success"},
                        ],
                        ndjson=True,
                    )
                elif self.path == "/api/chat":
                    self._chat(body, name)
                else:
                    self._send(404, {"error": "404 page not found"})

            def _chat(self, body: dict[str, Any], name: str) -> None:
                if replay.fail_first > 0:
                    replay.fail_first -= 1
                    self._send(503, {"error": "server busy, please try again.  maximum pending requests exceeded"})
                    return
                if name not in replay.models:
                    self._send(404, {"error": f'model "{name}" not found, try pulling it first'})
                    return
                content = json.dumps(replay.json_answer) if body.get("format") else replay.answer
                base = {"model": body["model"], "created_at": CREATED}
                if body.get("stream", True):
                    words = content.split(" ")
                    parts = [
                        {
                            **base,
                            "message": {"role": "assistant", "content": w + (" " if i < len(words) - 1 else "")},
                            "done": False,
                        }
                        for i, w in enumerate(words)
                    ]
                    parts.append(
                        {
                            **base,
                            "message": {"role": "assistant", "content": ""},
                            "done": True,
                            "done_reason": "stop",
                            **DONE_STATS,
                        }
                    )
                    self._send(200, parts, ndjson=True)
                else:
                    self._send(
                        200,
                        {
                            **base,
                            "message": {"role": "assistant", "content": content},
                            "done": True,
                            "done_reason": "stop",
                            **DONE_STATS,
                        },
                    )

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> OllamaReplay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [b for p, b in self.requests if p == path]
