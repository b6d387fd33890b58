"""Baseline tools that cannot live in our venv (FlagEmbedding 1.2.11 needs transformers<5; LangChain's FAISS store
lives in langchain-community) get a venv of their own under .bench/, built on first use."""

from __future__ import annotations

import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / ".bench"


def ensure_venv(name: str, packages: list[str], probe_import: str, torch: bool = True) -> Path:
    """Return the python of ``.bench/<name>``, creating it with torch==2.13.0 (the local CPU wheel, installed
    first so nothing pulls a CUDA build; skipped when ``torch`` is False) and ``packages`` unless
    ``import probe_import`` already works there."""
    venv = BENCH / name
    py = venv / "bin" / "python"
    probe = [str(py), "-c", f"import {probe_import}"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    print(f"creating {venv} ({', '.join(packages)})...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q"]
    if torch:
        subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, *packages], check=True)
    subprocess.run(probe, check=True)
    return py


def run_timed(name: str, cmd: list[str], cwd: Path, log: Path | None = None) -> float:
    """Run one tool as a fresh process and return its wall time; a failure stops the bench with its stderr.
    With ``log``, stdout and stderr are also kept there (for metrics the tool prints)."""
    import time

    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if log is not None:
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return dt


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files, without a log line per request."""

    def log_message(self, *args) -> None:
        pass


def serve_directory(directory: Path, handler: type[SimpleHTTPRequestHandler] = QuietHandler) -> ThreadingHTTPServer:
    """Serve ``directory`` on 127.0.0.1 (a free port) from a daemon thread; ``server.shutdown()`` stops it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
