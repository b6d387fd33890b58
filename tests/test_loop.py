"""loop.py end to end on CPU: real PDFs (the sample's shared-mime-info spec and a generated Constitution excerpt),
the bundled all-MiniLM-L6-v2, the real llama.cpp server with the bundled Qwen GGUF; killed once mid-way."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pdfs import sample_passages, text_pdf

from archivesrag.loop import best_candidate, choose_model, split_passages, verdict
from archivesrag.records import Passage, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def test_loop_runs_resumes_after_kill_and_reports(tmp_path, llama_server):
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    shutil.copy(ROOT / "data" / "sample" / "shared-mime-info-spec.pdf", pdfs)
    text_pdf(pdfs / "constitution.pdf", [p["text"] for p in sample_passages()[:6]])
    work = tmp_path / "work"
    cmd = [
        sys.executable,
        "loop.py",
        "--pdfs",
        str(pdfs),
        "--workdir",
        str(work),
        "--llm",
        llama_server,
        "--model",
        "q",
        "--epochs",
        "1",
        "--batch_size",
        "16",
        "--max_passages",  # few queries: generation with the 0.5B on one thread is most of this test's time
        "4",
        "--max_eval_passages",
        "3",
        "--concurrency",
        "2",
        "--eval_fraction",
        "0.5",
        "--queries_per_passage",
        "1",
    ]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = work / "steps" / "queries.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not marker.exists() and first.poll() is None:
        time.sleep(0.2)
    os.kill(first.pid, signal.SIGKILL)  # somewhere in mining or training
    first.wait()
    assert marker.exists(), "query generation did not finish in 10 minutes"
    stamps = {p.name: p.stat().st_mtime_ns for p in [marker, work / "query.train.jsonl", work / "query.eval.jsonl"]}

    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "[queries] done earlier; skipped" in second.stderr
    assert {p: (work / ("steps/" if p == "queries.json" else "") / p).stat().st_mtime_ns for p in stamps} == stamps

    report = (work / "report.md").read_text()
    for section in (
        "## Data",
        "## Retrieval on held-out documents",
        "## Training",
        "## Commands",
        "## Wall time per step",
        "## Verdict",
    ):
        assert section in report
    assert "python gen_query.py --input_file" in report and "run.py --output_dir" in report
    assert "done earlier, skipped" in report
    data = json.loads((work / "report.json").read_text())
    assert data["verdict"].startswith("Fine-tuned nDCG@10") and data["verdict"] in second.stdout
    assert {"ndcg.png", "loss.png"} <= {p.name for p in work.glob("*.png")}
    assert (work / "ndcg.png").read_bytes()[:4] == b"\x89PNG"
    assert (work / "index" / "chunks.sqlite").exists()
    assert data["steps"]["split"]["counts"]["eval_documents"] == 1
    assert "batch size" in second.stderr  # 16 asked, fewer examples than that: the loop shrank the batch
    # --merge_base auto (the default): the three merges were written and compared on the held-out split
    assert report.count("merged with base") >= 3 and (work / "model-merged-0.5" / "modules.json").exists()
    assert "--filter_model" in report  # the round-trip filter ran on the training queries


def test_split_holds_out_whole_documents():
    passages = [Passage(text=f"t{d}-{i}", source=f"doc{d}.pdf") for d in range(5) for i in range(3)]
    train, held = split_passages(passages, 0.4, seed=1)
    assert {p.source for p in train}.isdisjoint({p.source for p in held})
    assert len({p.source for p in held}) == 2 and len(train) + len(held) == 15


def test_loop_needs_exactly_one_source(tmp_path):
    proc = subprocess.run(
        [sys.executable, "loop.py", "--workdir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_missing_pdf_folder_is_one_line_and_no_step_is_marked_done(tmp_path):
    proc = subprocess.run(
        [sys.executable, "loop.py", "--pdfs", str(tmp_path / "nope"), "--workdir", str(tmp_path / "w")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: --pdfs {tmp_path / 'nope'}: no such directory"
    assert not (tmp_path / "w" / "steps").exists()


def _table(gain: float, low: float, high: float) -> dict:
    base = {"ndcg@10": 0.40}
    tuned = {"ndcg@10": 0.40 + gain, "ndcg@10_gain": gain, "ndcg@10_gain_low": low, "ndcg@10_gain_high": high}
    tuned["verdict"] = (
        "better than the base" if low > 0 else "worse than the base" if high < 0 else "no measurable difference"
    )
    return {"base": base, "tuned": tuned}


def test_a_fine_tune_that_loses_or_ties_keeps_the_base_and_the_report_says_so():
    assert choose_model(_table(-0.005, -0.009, -0.001), "base", "tuned")[0] == "base"
    tie = _table(0.004, -0.006, 0.014)
    assert choose_model(tie, "base", "tuned")[0] == "base"
    assert verdict(tie, "base", "tuned").endswith("no measurable difference, so the base model is kept.")
    win = _table(0.03, 0.01, 0.05)
    assert choose_model(win, "base", "tuned") == (
        "tuned",
        "its gain +3.00 points (95% interval [+1.00, +5.00]) is above the noise",
    )


def test_the_best_merge_is_the_candidate_and_the_verdict_names_it():
    table = {"base": {"ndcg@10": 0.50}, "tuned": {"ndcg@10": 0.49}, "m0.5": {"ndcg@10": 0.53}, "BM25": {"ndcg@10": 0.4}}
    assert best_candidate(table, ["tuned", "m0.25", "m0.5"]) == "m0.5"  # m0.25 not evaluated: ignored
    line = verdict(table, "base", "m0.5", "merged with base 0.5")
    assert line.startswith("Fine-tuned nDCG@10 53.00 (merged with base 0.5) vs base 50.00 (+3.00 points)")


def test_a_small_corpus_gets_several_queries_per_passage(tmp_path):
    from archivesrag.loop import Loop, LoopArgs

    loop = Loop(LoopArgs(workdir=str(tmp_path), passages="p.jsonl"))
    write_jsonl(tmp_path / "passages.train.jsonl", [Passage(text=f"passage {i}", id=str(i)) for i in range(120)])
    assert loop.queries_per_passage() == 3  # 120 passages: 3 each (the cap) toward 600 queries
    write_jsonl(tmp_path / "passages.train.jsonl", [Passage(text=f"passage {i}", id=str(i)) for i in range(400)])
    assert loop.queries_per_passage() == 2
    assert Loop(LoopArgs(workdir=str(tmp_path), passages="p", queries_per_passage=1)).queries_per_passage() == 1


def test_an_unknown_recipe_or_merge_weight_is_one_line(tmp_path):
    from archivesrag.errors import UserError
    from archivesrag.loop import Loop, LoopArgs

    with pytest.raises(UserError, match="--recipe mse: choose one of contrastive, kl"):
        Loop(LoopArgs(workdir=str(tmp_path), passages="p", recipe="mse"))
    with pytest.raises(UserError, match="--merge_base 2: the base model's weight must be between 0 and 1"):
        Loop(LoopArgs(workdir=str(tmp_path), passages="p", merge_base="2"))


def test_loop_cli_defaults_are_the_measured_loop_args_defaults(tmp_path, monkeypatch):
    # loop.py spells its flags with argparse; a default changed in LoopArgs alone (where the benchmark's numbers are
    # recorded) would silently not reach users of the command line.
    import importlib.util

    spec = importlib.util.spec_from_file_location("loop_cli", ROOT / "loop.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    monkeypatch.setattr(sys, "argv", ["loop.py", "--workdir", str(tmp_path), "--passages", "p.jsonl"])
    from archivesrag.loop import LoopArgs

    assert cli.parse_args() == LoopArgs(workdir=str(tmp_path), passages="p.jsonl")
