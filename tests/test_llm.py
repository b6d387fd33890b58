"""llm: one spec string, real llama.cpp (xllamacpp + bundled Qwen GGUF) and Ollama's native API."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from ollama_replay import OllamaReplay

from archivesrag.errors import UserError
from archivesrag.llm import (
    LLMError,
    LLMOutputError,
    LLMSpec,
    LLMUnavailable,
    OllamaLLM,
    bundled_gguf_path,
    get_llm,
    parse_spec,
)
from archivesrag.llm.base import parse_json_answer

QUERY_SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string", "minLength": 1}},
    "required": ["query"],
    "additionalProperties": False,
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("spec", "model", "expected"),
    [
        ("ollama:llama3", None, ("ollama", "llama3", None)),
        ("llama3:8b", None, ("ollama", "llama3:8b", None)),
        ("openai:gpt-4o", None, ("openai", "gpt-4o", None)),
        ("http://127.0.0.1:8000/v1/", "qwen", ("openai", "qwen", "http://127.0.0.1:8000/v1")),
        ("gguf:/models/q.gguf", None, ("gguf", "/models/q.gguf", None)),
        ("bundled", None, ("gguf", "bundled", None)),
    ],
)
def test_parse_spec(spec, model, expected):
    s = parse_spec(spec, model)
    assert (s.backend, s.model, s.base_url) == expected


def test_spec_without_model_is_an_error():
    with pytest.raises(UserError, match="names no model"):
        parse_spec("ollama:")


def test_bundled_gguf_is_verified_and_reused(qwen_gguf):
    assert qwen_gguf.stat().st_size > 400_000_000
    assert qwen_gguf.with_suffix(".sha256").read_text().startswith("1d9614638d18")
    mtime = qwen_gguf.stat().st_mtime_ns
    assert bundled_gguf_path("0.5b") == qwen_gguf and qwen_gguf.stat().st_mtime_ns == mtime  # not re-assembled
    default = bundled_gguf_path()  # the 1.5B answers best (bench/answers.py)
    assert default.stat().st_size == 1_117_320_768 and default.with_suffix(".sha256").read_text().startswith("cc324af0")


def test_chat_with_real_llama_cpp(llama_server):
    llm = get_llm(llama_server, model="qwen", temperature=0, max_tokens=16)
    answer = llm.chat("What is the capital of France? Answer with one word.")
    assert "paris" in answer.lower()
    assert llm.usage.calls == 1 and llm.usage.completion_tokens > 0


def test_stream_with_real_llama_cpp(llama_server):
    llm = get_llm(llama_server, model="qwen", temperature=0, max_tokens=24)
    pieces = list(llm.stream("Count from 1 to 5, separated by spaces."))
    assert len(pieces) > 3
    assert "1 2 3" in "".join(pieces)


def test_schema_constrained_json_with_real_llama_cpp(llama_server):
    llm = get_llm(llama_server, model="qwen", temperature=0, max_tokens=64)
    obj = llm.chat_json("Write one search query someone might type to find records about the 1918 flu.", QUERY_SCHEMA)
    assert set(obj) == {"query"} and obj["query"].strip()


def test_concurrent_async_json(llama_server):
    llm = get_llm(llama_server, model="qwen", temperature=0, max_tokens=48)

    async def main():
        return await asyncio.gather(
            *[llm.achat_json(f"Write a search query about topic number {i}.", QUERY_SCHEMA) for i in range(3)]
        )

    results = asyncio.run(main())
    assert len(results) == 3 and all(r["query"] for r in results)


def test_endpoint_down_is_one_line(monkeypatch):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    llm = get_llm(url, model="m", max_retries=1, timeout=5)
    with pytest.raises(LLMUnavailable) as err:
        llm.chat("hello")
    msg = str(err.value)
    assert url in msg and "cannot reach" in msg and "\n" not in msg
    with pytest.raises(LLMUnavailable):
        llm.check()


def test_missing_gguf_file_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no such GGUF file"):
        get_llm(f"gguf:{tmp_path / 'missing.gguf'}")


def test_openai_without_key_names_the_fix(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match="OPENAI_API_KEY is not set"):
        get_llm("openai:gpt-4o")


def test_json_output_is_validated_against_the_schema():
    assert parse_json_answer('{"query": "x"}', QUERY_SCHEMA, "here") == {"query": "x"}
    with pytest.raises(LLMOutputError, match="not JSON"):
        parse_json_answer("Sure! Here is a query", QUERY_SCHEMA, "here")
    with pytest.raises(LLMOutputError, match="does not fit the schema"):
        parse_json_answer('{"q": "x"}', QUERY_SCHEMA, "here")


# ---------------------------------------------------------------- Ollama native API (replayed shapes)


def test_ollama_chat_sends_num_ctx_and_counts_tokens():
    with OllamaReplay(models=["llama3"]) as o:
        llm = OllamaLLM(LLMSpec("ollama", "llama3"), host=o.host, num_ctx=16384, options={"temperature": 0})
        assert llm.chat("What is the capital of France?") == "Paris is the capital of France."
        (body,) = o.bodies("/api/chat")
        assert body["options"]["num_ctx"] == 16384 and body["options"]["temperature"] == 0
        assert body["stream"] is False
        assert llm.usage.prompt_tokens == 26 and llm.usage.completion_tokens == 12


def test_ollama_stream_yields_pieces():

    with OllamaReplay(models=["llama3"]) as o:
        llm = OllamaLLM(LLMSpec("ollama", "llama3"), host=o.host)
        pieces = list(llm.stream("capital?"))
        assert len(pieces) == 6 and "".join(pieces) == "Paris is the capital of France."


def test_ollama_json_uses_native_format_schema():

    with OllamaReplay(models=["llama3"]) as o:
        llm = OllamaLLM(LLMSpec("ollama", "llama3"), host=o.host)
        assert llm.chat_json("query please", QUERY_SCHEMA) == {"query": "what is the capital of france"}
        assert o.bodies("/api/chat")[0]["format"] == QUERY_SCHEMA


def test_ollama_pulls_a_missing_model():

    with OllamaReplay(models=[]) as o:
        llm = OllamaLLM(LLMSpec("ollama", "llama3"), host=o.host)
        assert llm.chat("hi")
        assert [b["model"] for b in o.bodies("/api/pull")] == ["llama3"]


def test_ollama_retries_503_then_answers():

    with OllamaReplay(models=["llama3"], fail_first=2) as o:
        llm = OllamaLLM(LLMSpec("ollama", "llama3"), host=o.host, max_retries=3)
        assert llm.chat("hi").startswith("Paris")
        assert len(o.bodies("/api/chat")) == 3


def test_ollama_honours_ollama_host_and_reports_down(monkeypatch):

    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("OLLAMA_HOST", url)
    llm = OllamaLLM(LLMSpec("ollama", "llama3"), max_retries=1)
    assert llm.host.startswith(url)
    with pytest.raises(LLMUnavailable) as err:
        llm.chat("hi")
    assert "cannot reach Ollama" in str(err.value) and "OLLAMA_HOST" in str(err.value)


def test_ollama_missing_model_without_pull_names_the_fix():

    with OllamaReplay(models=[]) as o:
        llm = OllamaLLM(LLMSpec("ollama", "llama3"), host=o.host, pull=False)
        with pytest.raises(LLMError, match="ollama pull llama3"):
            llm.chat("hi")


@pytest.mark.skipif(not os.environ.get("OLLAMA_HOST"), reason="no real Ollama here (set OLLAMA_HOST to run)")
def test_real_ollama_when_available():
    from archivesrag.llm import ollama_available

    if not ollama_available():
        pytest.skip(f"OLLAMA_HOST={os.environ['OLLAMA_HOST']} does not answer")
    model = os.environ.get("ARCHIVESRAG_TEST_OLLAMA_MODEL", "llama3")
    llm = get_llm(f"ollama:{model}", temperature=0, max_tokens=32)
    assert llm.chat("Say hello.")
    assert llm.chat_json("Write a search query about archives.", QUERY_SCHEMA)["query"]


def test_demo_answers_from_the_sample_with_sources(llama_server, tmp_path):
    """The README's demo path, end to end: sample passages, bundled embedder, a real LLM, numbered sources."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [
            sys.executable,
            "demo.py",
            "How long is a senator's term?",
            "--llm",
            llama_server,
            "--index",
            str(tmp_path / "i"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    answer, _, sources = proc.stdout.partition("Sources:")
    assert "six" in answer.lower() or "6" in answer
    assert "[1] passages.jsonl, line 2: Constitution of the United States, Article I, Section 3" in sources
    assert "six Years" in sources  # the passage that matched, under its label


def test_async_calls_work_across_event_loops(llama_server):
    """Two jobs in one process, each with its own asyncio.run(), share one LLM object."""
    llm = get_llm(llama_server, model="qwen", temperature=0, max_tokens=4)
    first = asyncio.run(llm.achat("Say hi."))
    second = asyncio.run(llm.achat("Say hi."))
    assert first and second
