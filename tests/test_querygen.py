"""gen_query.py against a real llama.cpp server (bundled Qwen GGUF), with faults injected by a proxy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from corpus import stdlib_pairs
from faulty_proxy import FaultyProxy

from archivesrag.llm import get_llm
from archivesrag.querygen import (
    QUERY_SCHEMA,
    SEED_PROMPT,
    QueryGenArgs,
    build_messages,
    copy_ratio,
    embeddable_part,
    few_shot_by_default,
    generate,
    invalid_reason,
)
from archivesrag.records import read_queries, text_hash

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def passages():
    """Short real passages (stdlib docstring bodies), so prompts stay small for a CPU LLM."""
    return [t for _, t in stdlib_pairs(20, min_words=20, max_words=45, prose=True)]


def write_passages(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def test_seed_prompt_is_verbatim():
    seed = (ROOT.parent / "shared" / "SEED.md").read_text() if (ROOT.parent / "shared" / "SEED.md").exists() else None
    if seed is None:
        pytest.skip("../shared/SEED.md not present")
    assert SEED_PROMPT in seed


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "empty"),
        ("retention of email", "too_short"),
        ("Email messages that document official business are public records and must be retained", "copy_of_passage"),
        ("do email messages that document official business count as records that must be retained", None),
        ("which work emails count as public records that I am required to keep on file", None),
    ],
)
def test_validator(query, reason):
    passage = (
        "Email messages that document official business are public records and must be retained according "
        "to the approved retention schedule, regardless of the system used to send them."
    )
    assert invalid_reason(query, passage, [], min_words=10) == reason


@pytest.mark.parametrize(
    "query",
    [
        # the first seen from the bundled Qwen2.5-0.5B (issue 15); the others: JSON, prompt and chat debris
        "what steps does the security team take for the vulnerabilities that we identified? }$python -c",
        'how can I upgrade my Debian system from one release to the next {"query": "upgrade',
        "Here is a search query about how the Debian project decides which packages go into a release",
        "what does this text say about the maintainers who package software for the Debian system",
        "which packages does apt install by default ```python import apt``` when setting up Debian",
    ],
)
def test_validator_rejects_junk_and_non_search_text(query):
    assert invalid_reason(query, "The Debian security team handles vulnerabilities.", [], min_words=10) == "junk"


def test_validator_keeps_paths_and_commands_a_person_would_type():
    q = "how do I pin packages from testing in /etc/apt/preferences and install them with apt-get -t"
    assert invalid_reason(q, "APT pinning lets you mix releases.", [], min_words=10) is None


def test_validator_catches_repeats_for_the_same_passage():
    q = "which work emails count as public records that I am required to keep on file"
    assert invalid_reason(q.upper() + "?", "some passage", [q], min_words=10) == "duplicate"


def test_echo_of_the_prompt_is_rejected():
    prompt = "Text: some passage\n\nWrite one search query of at least 10 words that this text answers."
    q = "Write one search query of at least 10 words that this text answers"
    assert invalid_reason(q, "some passage", [], 10, prompt=prompt) == "copy_of_prompt"


def test_openai_gets_a_strict_mode_schema_without_length_keywords():
    from archivesrag.llm import openai_strict_schema

    sent = openai_strict_schema(QUERY_SCHEMA)
    assert "minLength" not in json.dumps(sent) and sent["required"] == ["query"]
    assert QUERY_SCHEMA["properties"]["query"]["minLength"] == 50  # ours keeps its bounds


def test_copy_ratio_allows_shared_keywords():
    passage = "The reading room is open to registered researchers from Monday to Friday."
    assert copy_ratio("when can registered researchers use the reading room during the week", passage) < 0.5
    assert copy_ratio("the reading room is open to registered researchers from monday", passage) == 1.0


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("http://127.0.0.1:8080/v1", True),  # llama.cpp / vLLM / LM Studio: a local model
        ("ollama:llama3", True),
        ("bundled", True),
        ("openai:gpt-4o", False),
        ("https://api.openai.com/v1", False),
    ],
)
def test_worked_examples_are_on_for_every_llm_but_openai(spec, expected):
    assert few_shot_by_default(spec) is expected


def test_few_shot_examples_come_before_the_passage():
    msgs = build_messages("PASSAGE", SEED_PROMPT, few_shot=True)
    assert msgs[0] == {"role": "system", "content": SEED_PROMPT}
    assert [m["role"] for m in msgs[1:]] == ["user", "assistant", "user", "assistant", "user"]
    assert json.loads(msgs[2]["content"])["query"]
    assert msgs[-1]["content"].startswith("Text: PASSAGE") and "at least 10 words" in msgs[-1]["content"]
    assert len(build_messages("PASSAGE", SEED_PROMPT, few_shot=False)) == 2


def test_twenty_real_passages_give_twenty_valid_queries(llama_server, passages, tmp_path):
    import jsonschema

    src = write_passages(tmp_path / "passages.jsonl", passages)
    out = tmp_path / "query.jsonl"
    llm = get_llm(llama_server, model="qwen")
    args = QueryGenArgs(input_file=str(src), output_file=str(out), llm=llama_server, concurrency=2, max_attempts=4)
    stats = generate(args, llm=llm)
    rows = read_queries(out)
    # The bundled 0.5B model does not always manage a >=10-word query that is not a copy: those passages are
    # skipped and counted, never written. Measured here: 13-17 of 20 succeed within 3-4 attempts.
    assert stats.written == len(rows) >= 12
    assert stats.written + sum(stats.skipped.values()) == 20
    assert set(stats.skipped) <= {"copy_of_passage", "copy_of_prompt", "too_short", "duplicate", "bad_json"}
    assert {r.id for r in rows} <= {text_hash(t) for t in passages} and len({r.id for r in rows}) == len(rows)
    for r in rows:
        jsonschema.validate({"query": r.query}, QUERY_SCHEMA)
        assert invalid_reason(r.query, r.positive[0], [], min_words=10) is None
    assert stats.completion_tokens > 0


def test_two_queries_per_passage_are_distinct(llama_server, passages, tmp_path):
    src = write_passages(tmp_path / "passages.jsonl", passages[:2])
    out = tmp_path / "query.jsonl"
    args = QueryGenArgs(
        input_file=str(src), output_file=str(out), llm=llama_server, queries_per_passage=2, concurrency=2
    )
    stats = generate(args, llm=get_llm(llama_server, model="qwen"))
    by_id = {}
    for r in read_queries(out):
        by_id.setdefault(r.id, []).append(r.query.lower())
    assert stats.written >= 2 and stats.written + sum(stats.skipped.values()) == 4
    assert all(len(qs) <= 2 and len(set(qs)) == len(qs) for qs in by_id.values())


def test_faults_are_retried_and_a_dead_passage_is_skipped(llama_server, passages, tmp_path):
    poison = "POISONED PASSAGE: the proxy always answers 500 for this one, however often it is asked."
    src = write_passages(tmp_path / "passages.jsonl", [*passages[:4], poison])
    out = tmp_path / "query.jsonl"
    with FaultyProxy(
        llama_server.removesuffix("/v1"), first_faults=["500", "stall", "close"], poison="POISONED", stall_s=11
    ) as proxy:
        args = QueryGenArgs(
            input_file=str(src), output_file=str(out), llm=proxy.url + "/v1", concurrency=1, timeout=3, max_retries=2
        )
        stats = generate(args, llm=get_llm(args.llm, timeout=10, max_retries=2))
    # one llm_error: the poisoned passage; the injected 500/stall/close were retried away
    assert stats.skipped["llm_error"] == 1 and stats.written >= 2
    assert stats.written + sum(stats.skipped.values()) == 5
    assert {"500", "stall", "close"} <= set(proxy.events)
    assert poison not in {r.positive[0] for r in read_queries(out)}


def test_only_the_part_the_embedder_reads_is_asked_about(llama_server, passages, tmp_path):
    """A query about text past the embedder's window cannot be learned: the LLM sees only the first ~1,000
    characters (one index chunk), while the whole passage stays the positive. The tail here makes the proxy fail
    every request that carries it, so a written query proves the tail was never sent."""
    body = " ".join(passages)
    assert len(body) > 1000
    long = body + " POISONED tail that only a request with the whole passage would carry."
    src = write_passages(tmp_path / "passages.jsonl", [long])
    with FaultyProxy(llama_server.removesuffix("/v1"), poison="POISONED") as proxy:
        for max_chars, out in ((1000, tmp_path / "cut.jsonl"), (0, tmp_path / "whole.jsonl")):
            args = QueryGenArgs(
                input_file=str(src), output_file=str(out), llm=proxy.url + "/v1", concurrency=1,
                passage_max_chars=max_chars, max_retries=0, max_attempts=4,
            )
            stats = generate(args, llm=get_llm(args.llm, max_retries=0))
            assert stats.written + sum(stats.skipped.values()) == 1
            if max_chars:
                assert [r.positive for r in read_queries(out)] == [[long]]
            else:
                assert stats.skipped["llm_error"] == 1


def test_embeddable_part_cuts_at_a_word():
    assert embeddable_part("alpha beta gamma", 12) == "alpha beta"
    assert embeddable_part("alpha beta gamma", 0) == "alpha beta gamma"
    assert embeddable_part("short", 1000) == "short"


def run_cli(*argv, **kw):
    return subprocess.Popen(
        [sys.executable, "gen_query.py", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_kill_9_then_rerun_resumes_without_loss_or_duplicates(llama_server, passages, tmp_path):
    src = write_passages(tmp_path / "passages.jsonl", passages[:8])
    out = tmp_path / "query.jsonl"
    argv = ["--input_file", str(src), "--output_file", str(out), "--llm", llama_server, "--concurrency", "1"]
    proc = run_cli(*argv)
    deadline = time.time() + 240
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 2):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = out.read_text().splitlines()
    assert 2 <= len(before) < 8
    proc = run_cli(*argv)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    after = [json.loads(line) for line in out.read_text().splitlines()]
    assert [json.dumps(r) for r in after[: len(before)]] == [json.dumps(json.loads(b)) for b in before]
    ids = [r["id"] for r in after]
    assert len(ids) == len(set(ids)) and set(ids) <= {text_hash(t) for t in passages[:8]}
    assert f"({len(before)} passages already done)" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "fine"}\n{"text": ""}\n', "passages.jsonl:2: 'text' is empty"),
        ('{"text": "fine"}\n{"txt": "typo"}\n', "passages.jsonl:2: missing key 'text'"),
        ("{broken\n", "passages.jsonl:1: not valid JSON"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, content, message):
    src = tmp_path / "passages.jsonl"
    src.write_text(content)
    out = tmp_path / "query.jsonl"
    proc = run_cli("--input_file", str(src), "--output_file", str(out), "--llm", "http://127.0.0.1:9/v1")
    _, err = proc.communicate(timeout=60)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("value", ["-5", "many"])
def test_a_bad_passage_max_chars_is_one_line(tmp_path, passages, value):
    src = write_passages(tmp_path / "passages.jsonl", passages[:1])
    out = tmp_path / "q.jsonl"
    proc = run_cli(
        "--input_file", str(src), "--output_file", str(out), "--llm", "http://127.0.0.1:9/v1",
        "--passage_max_chars", value,
    )
    _, err = proc.communicate(timeout=60)
    lines = [line for line in err.splitlines() if "error" in line and "passage_max_chars" in line]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in err and not out.exists()


def test_unreachable_llm_is_one_line(tmp_path, passages):
    src = write_passages(tmp_path / "passages.jsonl", passages[:1])
    proc = run_cli(
        "--input_file",
        str(src),
        "--output_file",
        str(tmp_path / "q.jsonl"),
        "--llm",
        "http://127.0.0.1:9/v1",
        "--max_retries",
        "0",
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "cannot reach the LLM server" in err and "Traceback" not in err


def test_round_trip_filter_drops_queries_that_miss_their_passage(tmp_path):
    passages = [t for _, t in stdlib_pairs(11, min_words=20, max_words=45, prose=True)]
    raw = tmp_path / "query.unfiltered.jsonl"
    rows = [
        {
            "id": text_hash(t),
            "query": f"what does this say about {t.split()[2]} and related matters here",
            "positive": [t],
        }
        for t in passages[:10]
    ]
    rows.append(
        {
            "id": "x",
            "query": "recipe for banana bread with walnuts and a crunchy sugar topping",
            "positive": [passages[10]],
        }
    )
    raw.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from archivesrag.querygen import filter_queries

    args = QueryGenArgs(
        input_file="-", output_file=str(tmp_path / "query.jsonl"), filter_model="bundled", filter_top_k=3
    )
    dropped = filter_queries(raw, tmp_path / "query.jsonl", args)
    kept = read_queries(tmp_path / "query.jsonl")
    assert dropped["not_in_top_k"] >= 1
    assert "banana" not in " ".join(r.query for r in kept)
    assert len(kept) + sum(dropped.values()) == 11
