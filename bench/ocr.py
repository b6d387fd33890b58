"""python bench/ocr.py [--pages 12]

OCR speed and quality (issue 16), on image-only PDFs made from real manuals nobody on the team wrote (the Debian
FAQ and the Guide for Debian Maintainers in bench/answers/docs, and the sample's shared-mime-info spec):

- clean: each page rendered at 300 dpi, saved as an image-only PDF;
- noisy: 200 dpi with gaussian noise, blur, a 0.6° skew and JPEG compression (tests/scans.py);
- two-column: a two-column page typeset from the sample's Constitution text (reading order across columns).

Each scan goes through the ingest loader (``load_pdf(ocr="auto")``: render at 300 dpi, PP-OCR via RapidOCR, reading
order, paragraphs), and its text is compared with the original page's text layer: character error rate (edit
distance / reference length, whitespace normalised) per page, mean and worst, and pages/s on this CPU with
``ARCHIVESRAG_OCR_THREADS`` threads (default half the cores). Targets: CER <= 3% clean, <= 8% noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from pdfs import sample_passages, two_column_pdf  # noqa: E402
from scans import cer, page_texts, scan_pdf  # noqa: E402

from archivesrag.rag.ingest import load_pdf  # noqa: E402

DOCS = [
    (ROOT / "bench" / "answers" / "docs" / "debian-faq.pdf", [9, 10, 13, 15, 29, 36, 41, 47]),
    (ROOT / "bench" / "answers" / "docs" / "debmake-doc.pdf", [10, 18, 19, 42, 47, 52]),
    (ROOT / "data" / "sample" / "shared-mime-info-spec.pdf", [2, 4, 6, 8]),
]


def run(kind: str, pdf: Path, pages: list[int], tmp: Path, noisy: bool) -> tuple[list[float], float]:
    scan = tmp / f"{pdf.stem}-{kind}.pdf"
    truth = scan_pdf(pdf, pages, scan, noisy=noisy)
    t0 = time.perf_counter()
    sections = {s.page: s for s in load_pdf(scan, ocr="auto")}
    dt = time.perf_counter() - t0
    assert all(s.ocr for s in sections.values())
    return [cer(sections[i + 1].text if i + 1 in sections else "", t) for i, t in enumerate(truth)], dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=0, help="at most this many pages per document (0: all listed)")
    args = ap.parse_args()
    threads = os.environ.get("ARCHIVESRAG_OCR_THREADS") or str(max(1, (os.cpu_count() or 2) // 2))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        columns = two_column_pdf(t / "columns-src.pdf", [p["text"] for p in sample_passages()[2:6]])
        for kind, noisy in (("clean", False), ("noisy", True)):
            errors, seconds, n = [], 0.0, 0
            for pdf, pages in DOCS:
                pages = pages[: args.pages] if args.pages else pages
                e, dt = run(kind, pdf, pages, t, noisy)
                errors += e
                seconds += dt
                n += len(pages)
                print(f"{kind} {pdf.name}: CER " + " ".join(f"{x:.3f}" for x in e), flush=True)
            rows.append((kind, n, errors, n / seconds))
        e, dt = run("two-column", columns, [1], t, False)
        rows.append(("two-column (clean)", 1, e, 1 / dt))
        assert page_texts(columns, [1])
    print(f"\nOCR: RapidOCR PP-OCR ONNX, render 300 dpi, {threads} onnxruntime thread(s)\n")
    print("| scans | pages | CER mean | CER worst page | pages/s | target |")
    print("|---|---|---|---|---|---|")
    targets = {"clean": "<= 3%", "noisy": "<= 8%"}
    for kind, n, errors, rate in rows:
        print(
            f"| {kind} | {n} | {100 * statistics.mean(errors):.2f}% | {100 * max(errors):.2f}% | {rate:.2f} | "
            f"{targets.get(kind, '')} |"
        )


if __name__ == "__main__":
    main()
