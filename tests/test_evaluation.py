"""evaluate.py / archivesrag.evaluation: exact metrics, BEIR loading, document-level split, model vs BM25."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from corpus import stdlib_pairs

from archivesrag.errors import UserError
from archivesrag.evaluation import (
    METRICS,
    EvalSet,
    evaluate_all,
    gain_verdict,
    load_beir,
    load_query_set,
    mrr_at_k,
    ndcg_at_k,
    paired_bootstrap,
    recall_at_k,
    score_rankings,
    split_by_document,
    to_markdown,
)
from archivesrag.records import read_queries

ROOT = Path(__file__).resolve().parents[1]


def test_ndcg_mrr_recall_hand_computed():
    ranked, rel = ["d2", "d1", "d3", "d4"], {"d1": 1, "d3": 1}
    dcg = 1 / math.log2(3) + 1 / math.log2(4)  # hits at ranks 2 and 3
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k(ranked, rel) == pytest.approx(dcg / idcg) == pytest.approx(0.6934, abs=1e-4)
    assert mrr_at_k(ranked, rel) == 0.5
    assert recall_at_k(ranked, rel, 1) == 0.0 and recall_at_k(ranked, rel, 3) == 1.0


def test_graded_relevance_and_averaging():
    qrels = {"q1": {"a": 2, "b": 1}, "q2": {"c": 1}}
    scores = score_rankings({"q1": ["b", "a"], "q2": ["x", "y"]}, qrels)
    q1 = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert scores["ndcg@10"] == pytest.approx((q1 + 0.0) / 2)
    assert scores["mrr@10"] == pytest.approx(0.5) and scores["recall@100"] == pytest.approx(0.5)


def write_lines(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_beir_layout_is_read(tmp_path):
    write_lines(tmp_path / "corpus.jsonl", [{"_id": "d1", "title": "T", "text": "alpha"}, {"_id": "d2", "text": "b"}])
    write_lines(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "alpha?"}, {"_id": "q9", "text": "unjudged"}])
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    data = load_beir(tmp_path)
    assert data.corpus == {"d1": "T alpha", "d2": "b"} and data.queries == {"q1": "alpha?"}
    assert data.qrels == {"q1": {"d1": 1}}
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1 d1 1\n")
    with pytest.raises(UserError, match=r"test.tsv:2: expected query-id<TAB>corpus-id<TAB>score"):
        load_beir(tmp_path)


def test_split_by_document_never_shares_a_passage(tmp_path):
    pairs = stdlib_pairs(50)
    rows = [{"query": q, "positive": [t]} for q, t in pairs]
    rows.append({"query": "a second query for the first passage", "positive": [pairs[0][1]]})
    src = write_lines(tmp_path / "query.jsonl", rows)
    train, evals = split_by_document(src, 0.2, seed=3)
    train_docs = {p for r in read_queries(train) for p in r.positive}
    eval_docs = {p for r in read_queries(evals) for p in r.positive}
    assert not train_docs & eval_docs and len(eval_docs) == 10
    assert len(read_queries(train)) + len(read_queries(evals)) == 51


def test_model_and_bm25_side_by_side(tmp_path):
    pairs = stdlib_pairs(60)
    src = write_lines(tmp_path / "q.jsonl", [{"query": q, "positive": [t]} for q, t in pairs])
    table = evaluate_all(load_query_set(src), ["bundled"], bm25=True)
    assert set(table) == {"bundled", "BM25"}
    assert all(0.0 <= row[m] <= 1.0 for row in table.values() for m in METRICS)
    assert table["bundled"]["ndcg@10"] > 0.5 and table["bundled"]["recall@100"] == 1.0
    gain = table["BM25"]
    assert gain["ndcg@10_gain"] == pytest.approx(gain["ndcg@10"] - table["bundled"]["ndcg@10"], abs=1e-5)
    assert gain["ndcg@10_gain_low"] <= gain["ndcg@10_gain"] <= gain["ndcg@10_gain_high"]


def test_a_gain_inside_the_noise_is_called_no_measurable_difference():
    base = np.linspace(0.2, 0.9, 300)
    noise = np.random.default_rng(0).normal(0, 0.2, 300)
    diff, low, high = paired_bootstrap(base, base + noise + 0.002)
    assert low < 0 < high and gain_verdict(diff, low, high) == "no measurable difference"
    diff, low, high = paired_bootstrap(base, base + noise * 0.1 + 0.05)
    assert 0 < low < 0.05 < high and gain_verdict(diff, low, high) == "better than the base"
    table = {
        "base": dict.fromkeys(METRICS, 0.5),
        "tuned": {
            **dict.fromkeys(METRICS, 0.5),
            "ndcg@10_gain": diff,
            "ndcg@10_gain_low": low,
            "ndcg@10_gain_high": high,
            "verdict": gain_verdict(diff, low, high),
        },
    }
    assert (
        f"| tuned | {100 * diff:+.2f} | [{100 * low:+.2f}, {100 * high:+.2f}] | better than the base |"
        in to_markdown(table)
    )


def test_empty_eval_set_is_an_error():
    with pytest.raises(UserError, match="no queries"):
        evaluate_all(EvalSet({}, {"d": "x"}, {}), ["bundled"])


def cli(*argv):
    return subprocess.run([sys.executable, "evaluate.py", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_cli_split_then_evaluate_writes_json_and_markdown(tmp_path):
    pairs = stdlib_pairs(40)
    src = write_lines(tmp_path / "query.jsonl", [{"query": q, "positive": [t]} for q, t in pairs])
    out = tmp_path / "eval.json"
    proc = cli(
        "--split_by_document", "0.25", "--queries", str(src), "--model_name_or_path", "bundled", "--output", str(out)
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "query.train.jsonl").exists() and (tmp_path / "query.eval.jsonl").exists()
    report = json.loads(out.read_text())
    assert report["queries"] == 10 and set(report["metrics"]) == {"bundled", "BM25"}
    assert "| bundled |" in out.with_suffix(".md").read_text() and "| BM25 |" in proc.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--split_by_document", "1.5", "--queries", "{q}"], "give a fraction between 0 and 1"),
        (["--queries", "{missing}"], "no such file"),
        ([], "give --queries"),
        (["--beir_dir", "{dir}"], "corpus.jsonl: missing"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, argv, message):
    q = write_lines(tmp_path / "q.jsonl", [{"query": "q", "positive": ["p"]}])
    argv = [a.format(q=q, missing=tmp_path / "nope.jsonl", dir=tmp_path) for a in argv]
    proc = cli(*argv)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr
