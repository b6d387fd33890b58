"""OpenAI and every server that speaks its chat-completions API, through the official ``openai`` client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from archivesrag.llm.base import (
    LLM,
    LLMError,
    LLMSpec,
    LLMUnavailable,
    LoopLocal,
    Messages,
    chat_messages,
    openai_strict_schema,
    parse_json_answer,
)


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
        kw: dict[str, Any] = {"model": self.spec.model, "messages": chat_messages(messages, o.pop("system", None))}
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
        return parse_json_answer(self._create(messages, schema, opts), schema, self.where)

    async def achat(self, messages: Messages, **opts: Any) -> str:
        return await self._acreate(messages, None, opts)

    async def achat_json(self, messages: Messages, schema: dict[str, Any], **opts: Any) -> dict[str, Any]:
        return parse_json_answer(await self._acreate(messages, schema, opts), schema, self.where)

    def stream(self, messages: Messages, **opts: Any) -> Iterator[str]:
        """Yield the answer in pieces. Closing this generator early (the caller stops reading) closes the HTTP
        response, so the server stops writing an answer nobody reads (llama.cpp frees its slot)."""
        try:
            with self._client.chat.completions.create(**self._kwargs(messages, None, opts), stream=True) as chunks:
                for chunk in chunks:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
        except self._openai.OpenAIError as err:
            raise self._error(err) from None
        self.usage.add(None, None)
