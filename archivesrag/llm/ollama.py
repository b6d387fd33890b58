"""Ollama through its native API and the official ``ollama`` client (``num_ctx``, schema ``format``, pulls)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from archivesrag.llm.base import (
    LLM,
    RETRY_STATUS,
    LLMError,
    LLMSpec,
    LLMUnavailable,
    LoopLocal,
    Messages,
    chat_messages,
    parse_json_answer,
)

log = logging.getLogger(__name__)


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
            "messages": chat_messages(messages, o.get("system")),
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
        return parse_json_answer(text, schema, self.host)

    async def achat(self, messages: Messages, **opts: Any) -> str:
        await asyncio.to_thread(self.check)
        return self._text(await self._aretry(lambda: self._aclients.get().chat(**self._kwargs(messages, None, opts))))

    async def achat_json(self, messages: Messages, schema: dict[str, Any], **opts: Any) -> dict[str, Any]:
        await asyncio.to_thread(self.check)
        resp = await self._aretry(lambda: self._aclients.get().chat(**self._kwargs(messages, schema, opts)))
        return parse_json_answer(self._text(resp), schema, self.host)

    def stream(self, messages: Messages, **opts: Any) -> Iterator[str]:
        self.check()
        parts = self._retry(lambda: self._client.chat(**self._kwargs(messages, None, opts), stream=True))
        try:
            for part in parts:
                if part["message"]["content"]:
                    yield part["message"]["content"]
                if part.get("done"):
                    self.usage.add(part.get("prompt_eval_count"), part.get("eval_count"))
        except GeneratorExit:
            getattr(parts, "close", lambda: None)()  # the caller stopped reading: close the HTTP stream
            raise
        except Exception as err:
            raise self._error(err) from None
