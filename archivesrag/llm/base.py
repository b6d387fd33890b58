"""What every backend shares: the :class:`LLM` interface, spec strings, errors, usage counts, JSON checks."""

from __future__ import annotations

import asyncio
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from archivesrag.bundled import bundled_llm
from archivesrag.errors import UserError

Messages = str | list[dict[str, str]]

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


def chat_messages(messages: Messages, system: str | None = None) -> list[dict[str, str]]:
    """Chat messages from a bare prompt or a message list, with ``system`` first when given.

    Example:
        >>> chat_messages("hi", system="be brief")
        [{'role': 'system', 'content': 'be brief'}, {'role': 'user', 'content': 'hi'}]
    """
    msgs = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
    if system:
        msgs = [{"role": "system", "content": system}, *msgs]
    return msgs


def parse_json_answer(text: str, schema: dict[str, Any], where: str) -> dict[str, Any]:
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
