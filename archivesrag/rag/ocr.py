"""OCR for PDF pages without a text layer: render the page (pypdfium2), read it (RapidOCR's PP-OCR ONNX models,
shipped in the ``rapidocr`` wheel, on onnxruntime), and put the lines back in reading order.

Reading order: the boxes are grouped into lines (vertical overlap), lines into paragraphs (vertical gaps), and a
page whose lines leave an empty vertical gutter near the middle is read column by column; a line that crosses
the gutter (a title, a full-width figure caption) closes the band of columns above it. Boxes the recogniser is
unsure of (score below :data:`MIN_SCORE`) are dropped. Words hyphenated across a line break are joined.

Nothing here is downloaded: the models are the wheel's own files. One engine per process (the ingest worker's).

Example:
    >>> import pypdfium2 as pdfium
    >>> ocr_page(pdfium.PdfDocument("scan.pdf")[0])
    OcrPage(text='The Congress shall have Power ...', lines=31, dropped=2)
"""

from __future__ import annotations

import logging
import os
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

OCR_MODES = ("auto", "off", "force")
RENDER_DPI = 300  # bench/ocr.py: CER on clean renders 200 dpi vs 300 dpi, see README "Benchmarks"
MIN_SCORE = 0.6  # recogniser confidence below which a box is more often noise than text
MIN_TEXT_CHARS = 40  # a page with fewer characters in its text layer counts as having none ("auto")
_ENGINE: Any = None


@dataclass
class Box:
    """One recognised text box: its text, confidence and extent on the page image (pixels)."""

    text: str
    score: float
    left: float
    right: float
    top: float
    bottom: float

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass
class OcrPage:
    """What OCR read from one page."""

    text: str
    lines: int
    dropped: int  # boxes below MIN_SCORE


def engine() -> Any:
    """This process's RapidOCR engine (loaded once: ~0.5 s), with ``ARCHIVESRAG_OCR_THREADS`` onnxruntime threads
    (default: half the cores, so the embedder in the parent keeps one)."""
    global _ENGINE
    if _ENGINE is None:
        from rapidocr import RapidOCR

        threads = int(os.environ.get("ARCHIVESRAG_OCR_THREADS") or max(1, (os.cpu_count() or 2) // 2))
        _ENGINE = RapidOCR(
            params={
                "Global.log_level": "error",
                # The 180° line classifier misreads some upright lines (page CER 6.5% with it, 0.6% without, on
                # a Debian FAQ page); scans come upright, and a slight skew is handled by detection itself.
                "Global.use_cls": False,
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
    return _ENGINE


def page_needs_ocr(text: str, page: Any, mode: str) -> bool:
    """Whether a page is rendered and read: always with ``force``; with ``auto`` only when its text layer is
    (almost) empty and it holds an image, so a text page is never rendered and a blank one costs nothing."""
    if mode == "force":
        return True
    if mode != "auto" or len(text.strip()) >= MIN_TEXT_CHARS:
        return False
    import pypdfium2.raw as pdfium_c

    return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2))


def render(page: Any, dpi: int = RENDER_DPI) -> np.ndarray:
    """The page as an RGB array at ``dpi``."""
    return np.asarray(page.render(scale=dpi / 72).to_pil().convert("RGB"))


def read_boxes(image: np.ndarray) -> list[Box]:
    """Every text box RapidOCR finds on ``image``."""
    result = engine()(image)
    if result.boxes is None or result.txts is None:
        return []
    boxes = []
    for quad, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
        xs, ys = [p[0] for p in quad], [p[1] for p in quad]
        boxes.append(Box(text.strip(), float(score), min(xs), max(xs), min(ys), max(ys)))
    return [b for b in boxes if b.text]


def group_lines(boxes: list[Box]) -> list[list[Box]]:
    """Boxes that overlap vertically by more than half the smaller height are one line, read left to right."""
    lines: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: (b.top + b.bottom) / 2):
        if lines:
            last = lines[-1]
            top, bottom = min(b.top for b in last), max(b.bottom for b in last)
            overlap = min(bottom, box.bottom) - max(top, box.top)
            if overlap > 0.5 * min(bottom - top, box.height):
                last.append(box)
                continue
        lines.append([box])
    return [sorted(line, key=lambda b: b.left) for line in lines]


def find_gutter(boxes: list[Box], width: float) -> float | None:
    """The x of an empty vertical strip between 30% and 70% of the page that boxes lie on both sides of, or None.

    A two-column page has one; a one-column page has text across the middle on most lines.
    """
    narrow = [b for b in boxes if b.right - b.left < 0.55 * width]
    if len(narrow) < 6:
        return None
    xs = np.arange(int(0.3 * width), int(0.7 * width), max(1, int(width / 200)))
    cover = np.array([sum(1 for b in narrow if b.left < x < b.right) for x in xs])
    best = int(np.argmin(cover))
    x = float(xs[best])
    left = sum(1 for b in narrow if b.right <= x)
    right = sum(1 for b in narrow if b.left >= x)
    if cover[best] > 0 or min(left, right) < 3:
        return None
    return x


def reading_order(boxes: list[Box], width: float) -> list[list[Box]]:
    """Lines in the order a person reads them: by band, and within a band column by column."""
    gutter = find_gutter(boxes, width)
    if gutter is None:
        return group_lines(boxes)
    ordered: list[list[Box]] = []
    band: list[Box] = []

    def close_band() -> None:
        ordered.extend(group_lines([b for b in band if b.right <= gutter]))
        ordered.extend(group_lines([b for b in band if b.left >= gutter]))
        band.clear()

    for box in sorted(boxes, key=lambda b: b.top):
        if box.left < gutter < box.right:  # spans both columns: what is above it is read first
            close_band()
            ordered.append([box])
        else:
            band.append(box)
    close_band()
    return ordered


def join_paragraphs(lines: list[list[Box]]) -> str:
    """Lines joined into paragraphs: a vertical gap wider than half a line height, or a jump back up the page (the
    next column), starts a new paragraph; a word hyphenated at a line end is joined."""
    if not lines:
        return ""
    heights = [max(b.bottom for b in line) - min(b.top for b in line) for line in lines]
    typical = statistics.median(heights)
    paragraphs: list[str] = []
    current = ""
    prev_bottom: float | None = None
    for line in lines:
        text = " ".join(b.text for b in line)
        top, bottom = min(b.top for b in line), max(b.bottom for b in line)
        gap = None if prev_bottom is None else top - prev_bottom
        if current and (gap is None or gap > 0.5 * typical or gap < -typical):
            paragraphs.append(current)
            current = ""
        if not current:
            current = text
        elif current.endswith("-") and text[:1].islower():
            current = current[:-1] + text
        else:
            current += " " + text
        prev_bottom = bottom
    paragraphs.append(current)
    return "\n\n".join(p for p in paragraphs if p)


def ocr_image(image: np.ndarray) -> OcrPage:
    """Read one page image: confident boxes, in reading order, as paragraphs."""
    boxes = read_boxes(image)
    kept = [b for b in boxes if b.score >= MIN_SCORE]
    lines = reading_order(kept, float(image.shape[1]))
    return OcrPage(join_paragraphs(lines), len(lines), len(boxes) - len(kept))


def ocr_page(page: Any, dpi: int = RENDER_DPI) -> OcrPage:
    """Render and read one pypdfium2 page."""
    return ocr_image(render(page, dpi))
