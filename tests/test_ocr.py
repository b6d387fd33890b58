"""Scanned PDFs: pages without a text layer are read by OCR (RapidOCR's PP-OCR ONNX models, bundled in its wheel),
indexed with their page number and cited as "page N, OCR". The scans are image-only PDFs made from real pages
nobody here wrote (the sample's shared-mime-info spec, the Constitution), clean and with noise, blur and skew."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from pdfs import sample_passages, text_pdf, two_column_pdf
from scans import cer, normalise, scan_pdf

from archivesrag.app import AppSettings, Engine
from archivesrag.llm import get_llm
from archivesrag.rag import IndexStore, ingest
from archivesrag.rag.ingest import load_pdf

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "data" / "sample" / "shared-mime-info-spec.pdf"


def rag(*argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "rag.py", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600, **kw
    )


def test_clean_and_noisy_scans_are_read_with_a_low_error_rate(tmp_path):
    truth = scan_pdf(SPEC, [2, 4], tmp_path / "clean.pdf")
    clean = load_pdf(tmp_path / "clean.pdf")
    assert [s.page for s in clean] == [1, 2] and all(s.ocr for s in clean)
    assert max(cer(s.text, t) for s, t in zip(clean, truth, strict=True)) <= 0.05
    noisy_truth = scan_pdf(SPEC, [6], tmp_path / "noisy.pdf", noisy=True)
    assert cer(load_pdf(tmp_path / "noisy.pdf")[0].text, noisy_truth[0]) <= 0.10


def test_two_columns_are_read_column_by_column(tmp_path):
    texts = [p["text"] for p in sample_passages()[2:5]]
    scan_pdf(two_column_pdf(tmp_path / "cols.pdf", texts), [1], tmp_path / "scan.pdf")
    read = normalise(load_pdf(tmp_path / "scan.pdf")[0].text)
    starts = [read.find(" ".join(t.split()[:6])) for t in texts]
    assert -1 not in starts and starts == sorted(starts), starts  # each passage begins after the one before it


def test_ocr_off_skips_a_scan_and_a_text_page_is_never_rendered(tmp_path, monkeypatch):
    scan_pdf(SPEC, [2], tmp_path / "scan.pdf")
    proc = rag(
        "ingest",
        "--index",
        str(tmp_path / "i"),
        "--embedding_model",
        "bundled",
        "--ocr",
        "off",
        str(tmp_path / "scan.pdf"),
    )
    assert proc.returncode == 0 and "no text layer" in proc.stderr and "0 indexed" in proc.stdout

    from archivesrag.rag import ocr

    def fail(*_a, **_k):
        raise AssertionError("a page with a text layer was rendered")

    monkeypatch.setattr(ocr, "render", fail)
    assert not any(s.ocr for s in load_pdf(SPEC, ocr="auto"))


def test_a_scanned_pdf_becomes_searchable_and_ask_cites_its_page(tmp_path, llama_server):
    passages = sample_passages()
    text_pdf(tmp_path / "src.pdf", [passages[0]["text"], passages[1]["text"]])  # page 2: the Senate
    scan_pdf(tmp_path / "src.pdf", [1, 2], tmp_path / "scanned.pdf", noisy=True)
    idx = str(tmp_path / "idx")
    proc = rag("ingest", "--index", idx, "--embedding_model", "bundled", str(tmp_path / "scanned.pdf"))
    assert proc.returncode == 0 and "1 indexed" in proc.stdout and "2 pages by OCR" in proc.stdout, proc.stderr
    proc = rag("ask", "--index", idx, "--llm", llama_server, "--json", "How old must a Senator be?")
    assert proc.returncode == 0, proc.stderr[-2000:]
    top = json.loads(proc.stdout)["sources"][0]
    assert top["page"] == 2 and top["ocr"] and top["label"] == "scanned.pdf, page 2, OCR"
    assert "thirty Years" in top["text"]


def test_a_corrupt_image_page_is_a_warning_and_the_rest_is_indexed(tmp_path, embedder):
    scan_pdf(SPEC, [2, 4], tmp_path / "scan.pdf", dpi=150)
    data = bytearray((tmp_path / "scan.pdf").read_bytes())
    second = data.find(b"stream", data.find(b"stream") + 10)  # the second page's JPEG data
    data[second + 600 : second + 40_000] = b"\x00" * (40_000 - 600)
    (tmp_path / "scan.pdf").write_bytes(bytes(data))
    proc = rag("ingest", "--index", str(tmp_path / "i"), "--embedding_model", "bundled", str(tmp_path / "scan.pdf"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "1 indexed" in proc.stdout, proc.stderr
    pages = {c.page for c in IndexStore.open(tmp_path / "i").get(list(range(1, 200)))}
    assert 1 in pages


def test_kill_9_during_ocr_then_rerun_finishes_the_rest(tmp_path, embedder):
    docs = tmp_path / "scans"
    docs.mkdir()
    for i, pages in enumerate([[2, 3], [4, 5], [6, 7]]):
        scan_pdf(SPEC, pages, docs / f"scan{i}.pdf", dpi=150)
    idx = tmp_path / "idx"
    cmd = [sys.executable, "rag.py", "ingest", "--index", str(idx), "--embedding_model", "bundled", str(docs)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # kill once the first file is in and the worker is reading the next ones
        if (idx / "chunks.sqlite").exists():
            with sqlite3.connect(idx / "chunks.sqlite") as db:
                try:
                    if db.execute("SELECT COUNT(*) FROM files").fetchone()[0] >= 1:
                        break
                except sqlite3.OperationalError:
                    pass
        time.sleep(0.1)
    workers = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert workers and not psutil.wait_procs(workers, timeout=5)[1]  # the OCR worker died with it
    store = IndexStore.open(idx)
    done = store.sources()
    assert 1 <= len(done) < 3
    per_source = dict(store.db.execute("SELECT source, COUNT(*) FROM chunks GROUP BY source").fetchall())
    assert set(per_source) == set(done)  # nothing of a half-read file
    report = ingest([docs], idx, embedder, show_progress=False)
    assert len(report.unchanged) == len(done) and len(report.indexed) == 3 - len(done)
    final = IndexStore.open(idx)
    ocr_pages = final.db.execute("SELECT COUNT(DISTINCT source || page) FROM chunks WHERE ocr = 1").fetchone()[0]
    assert len(final.sources()) == 3 and ocr_pages == 6 and final.faiss().ntotal == final.count()


@pytest.fixture
def engine(tmp_path, embedder, llama_server):
    data = tmp_path / "data"
    data.mkdir()
    return Engine.start(
        AppSettings(data_path=str(data), rerank_model=None), llm=get_llm(llama_server, model="q"), embedder=embedder
    )


def test_an_uploaded_scan_is_read_and_its_result_says_so(engine, tmp_path):
    scan_pdf(SPEC, [2], tmp_path / "upload.pdf", dpi=150)
    result = engine.add_upload(str(tmp_path / "upload.pdf"), "scan.pdf")
    assert result.status == "indexed" and result.detail.startswith("1 page, 1 by OCR"), result.line()


def test_loop_reads_scanned_pdfs_by_ocr_unless_told_not_to(tmp_path):
    from archivesrag.errors import UserError
    from archivesrag.loop import pdf_passages

    (tmp_path / "pdfs").mkdir()
    truth = scan_pdf(SPEC, [2], tmp_path / "pdfs" / "scan.pdf", dpi=150)
    passages = pdf_passages(tmp_path / "pdfs")
    assert passages and passages[0].page == 1 and cer(" ".join(p.text for p in passages), truth[0]) < 0.1
    with pytest.raises(UserError, match="no PDF with extractable text"):
        pdf_passages(tmp_path / "pdfs", ocr="off")
