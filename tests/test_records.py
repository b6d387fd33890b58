"""records: the JSONL contracts between stages (good lines, bad lines, resume, atomic writes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from archivesrag.records import (
    JsonlAppender,
    RecordError,
    TrainingExample,
    atomic_write,
    completed_keys,
    read_passages,
    read_queries,
    read_training_examples,
    text_hash,
    write_jsonl,
)


def write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return p


def test_passages_keep_optional_fields_and_skip_blank_lines(tmp_path):
    p = write(
        tmp_path,
        "p.jsonl",
        [
            '{"text": "InterPARES Trust studies records.", "url": "https://x/a", "title": "A"}',
            "",
            '{"text": "Second passage."}',
        ],
    )
    got = read_passages(p)
    assert [x.text for x in got] == ["InterPARES Trust studies records.", "Second passage."]
    assert got[0].url == "https://x/a" and got[0].title == "A" and got[1].url is None


def test_passage_key_is_content_hash_unless_id_given(tmp_path):
    p = write(tmp_path, "p.jsonl", ['{"text": "same text"}', '{"text": "same text", "id": "doc-7"}'])
    a, b = read_passages(p)
    assert a.key == text_hash("same text") and b.key == "doc-7"


def test_queries_accept_seed_and_flagembedding_keys(tmp_path):
    p = write(tmp_path, "q.jsonl", ['{"query": "q1 words", "positive": ["p1"]}', '{"query": "q2", "pos": ["p2"]}'])
    assert [(q.query, q.positive) for q in read_queries(p)] == [("q1 words", ["p1"]), ("q2", ["p2"])]


def test_training_examples_accept_neg_and_scores(tmp_path):
    p = write(tmp_path, "t.jsonl", ['{"query": "q", "pos": ["p"], "neg": ["n1", "n2"], "neg_scores": [0.5, 0.4]}'])
    (ex,) = read_training_examples(p)
    assert ex.negative == ["n1", "n2"] and ex.neg_scores == [0.5, 0.4]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"text": "ok"', "not valid JSON"),
        ('["text"]', "expected a JSON object"),
        ('{"title": "no text"}', "missing key 'text'"),
        ('{"text": 42}', "'text' must be a string"),
        ('{"text": "   "}', "'text' is empty"),
        ('{"text": "x", "page": "one"}', "'page' must be an integer"),
    ],
)
def test_bad_passage_line_names_file_and_line(tmp_path, line, reason):
    p = write(tmp_path, "p.jsonl", ['{"text": "good"}', "", line])
    with pytest.raises(RecordError) as err:
        read_passages(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}:3: ") and reason in msg and "\n" not in msg


def test_bad_query_lines(tmp_path):
    p = write(tmp_path, "q.jsonl", ['{"query": "q", "positive": "p"}', '{"query": "q", "positive": [1]}'])
    with pytest.raises(RecordError, match=r"q.jsonl:2: 'positive' must be a list of strings"):
        read_queries(p)
    p2 = write(tmp_path, "q2.jsonl", ['{"query": "q"}'])
    with pytest.raises(RecordError, match=r"q2.jsonl:1: missing key 'positive' \(or 'pos'\)"):
        read_queries(p2)


def test_training_requires_negatives_when_asked(tmp_path):
    p = write(
        tmp_path,
        "t.jsonl",
        ['{"query": "q", "positive": ["p"], "negative": ["n"]}', '{"query": "q", "positive": ["p"]}'],
    )
    assert len(read_training_examples(p)) == 2
    with pytest.raises(RecordError, match=r"t.jsonl:2: no negatives; run mine_hn.py"):
        read_training_examples(p, require_negatives=True)


def test_missing_empty_and_non_utf8_files(tmp_path):
    with pytest.raises(RecordError, match="no such file"):
        read_passages(tmp_path / "nope.jsonl")
    with pytest.raises(RecordError, match="has no records"):
        read_passages(write(tmp_path, "e.jsonl", ["", "  "]))
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(RecordError, match=r"latin1.jsonl:2: not UTF-8"):
        read_passages(bad)


def test_flagembedding_output_keys():
    ex = TrainingExample(query="q", positive=["p"], negative=["n"])
    assert ex.to_dict() == {"query": "q", "positive": ["p"], "negative": ["n"]}
    assert ex.to_dict("flagembedding") == {"query": "q", "pos": ["p"], "neg": ["n"]}


def test_appender_resumes_and_cuts_a_torn_tail(tmp_path):
    out = tmp_path / "out.jsonl"
    with JsonlAppender(out) as w:
        w.write({"id": "a", "query": "first"})
        w.write({"id": "b", "query": "second"})
    with out.open("a") as f:  # what kill -9 in the middle of a write leaves behind
        f.write('{"id": "c", "que')
    with JsonlAppender(out) as w:
        assert w.completed_keys("id") == {"a", "b"}
        w.write({"id": "c", "query": "third"})
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a", "b", "c"]


def test_appender_survives_kill_9(tmp_path):
    """A writer process killed with SIGKILL loses nothing it flushed and leaves no broken line."""
    out = tmp_path / "out.jsonl"
    script = textwrap.dedent(f"""
        import os, signal
        from archivesrag.records import JsonlAppender
        with JsonlAppender({str(out)!r}) as w:
            for i in range(50):
                w.write({{"id": str(i), "text": "x" * 1000}})
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd())
    assert proc.returncode == -9
    assert completed_keys(out, "id") == {str(i) for i in range(50)}


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "index.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]  # no temp file left behind


def test_write_jsonl_roundtrip(tmp_path):
    n = write_jsonl(tmp_path / "q.jsonl", [{"query": "é q", "positive": ["p"]}])
    assert n == 1 and read_queries(tmp_path / "q.jsonl")[0].query == "é q"
