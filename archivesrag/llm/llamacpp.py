"""llama.cpp inside this process (``xllamacpp``): one OpenAI-compatible engine per model, threads that hold up."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from archivesrag.errors import UserError

log = logging.getLogger(__name__)


def default_threads() -> int:
    """llama.cpp generation threads: ``ARCHIVESRAG_LLM_THREADS``, else half the cores.

    bench/llm_threads.py, Qwen2.5-Coder-1.5B on 2 cores: 1 thread generates 23 tok/s idle and 23 tok/s while
    another process keeps a core busy; 2 threads generate 35 idle but fall to 11 under that load.
    """
    env = os.environ.get("ARCHIVESRAG_LLM_THREADS")
    return int(env) if env else max(1, min(8, (os.cpu_count() or 2) // 2))


def default_batch_threads() -> int:
    """llama.cpp prompt-evaluation threads: ``ARCHIVESRAG_LLM_BATCH_THREADS``, else every core (up to 16).

    Reading the prompt is most of a RAG answer's wait on a CPU and is one large batch, which scales with cores
    and does not stall under load as token-by-token generation does (bench/llm_threads.py on 2 cores: 2 threads
    read 91 tok/s idle and 50 under load, 1 thread 47 either way).
    """
    env = os.environ.get("ARCHIVESRAG_LLM_BATCH_THREADS")
    return int(env) if env else max(1, min(16, os.cpu_count() or 2))


class LocalLlamaServer:
    """llama.cpp's server running inside this process on a free loopback port (OpenAI-compatible).

    Example:
        >>> srv = LocalLlamaServer(bundled_gguf_path(), n_parallel=2)
        >>> srv.base_url
        'http://127.0.0.1:38211/v1'
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        n_ctx: int = 8192,
        n_parallel: int = 1,
        threads: int | None = None,
        verbose: bool = False,
        batch_threads: int | None = None,
    ) -> None:
        import xllamacpp

        p = Path(path)
        if not p.is_file():
            raise UserError(f"{p}: no such GGUF file; pass gguf:/path/to/model.gguf or --llm bundled")
        params = xllamacpp.CommonParams()
        params.model.path = str(p)
        params.n_ctx = n_ctx * n_parallel  # the context is shared by the slots
        params.n_parallel = n_parallel
        params.cpuparams.n_threads = threads or default_threads()
        params.cpuparams_batch.n_threads = batch_threads or (threads if threads else default_batch_threads())
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        if not verbose:
            params.verbosity = -1
        t0 = time.perf_counter()
        try:
            self._server = xllamacpp.Server(params)
        except Exception as err:
            raise UserError(f"{p}: llama.cpp could not load this model ({err})") from None
        self.base_url = self._server.listening_address.rstrip("/") + "/v1"
        self.path = p
        log.info(
            "llama.cpp serving %s at %s (%d slot(s), %d thread(s), %d for prompts, %.1fs to load)",
            p.name,
            self.base_url,
            n_parallel,
            params.cpuparams.n_threads,
            params.cpuparams_batch.n_threads,
            time.perf_counter() - t0,
        )

    def close(self) -> None:
        self._server = None


_LOCAL_SERVERS: dict[tuple[str, int, int], LocalLlamaServer] = {}
_LOCAL_LOCK = threading.Lock()


def local_server(path: Path, n_ctx: int = 8192, n_parallel: int = 1) -> LocalLlamaServer:
    """One in-process engine per (model, context, slots), shared by every :class:`LLM` of this process."""
    key = (str(path.resolve()), n_ctx, n_parallel)
    with _LOCAL_LOCK:
        if key not in _LOCAL_SERVERS:
            _LOCAL_SERVERS[key] = LocalLlamaServer(path, n_ctx=n_ctx, n_parallel=n_parallel)
        return _LOCAL_SERVERS[key]
