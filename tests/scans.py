"""Image-only PDFs made from real PDF pages, the way a scanner makes them: each page is rendered to a picture
(optionally with sensor noise, a little blur, a slight skew and JPEG compression) and saved as a PDF that has no
text layer. The text layer of the original page is the ground truth. Used by tests/test_ocr.py and bench/ocr.py.

Example:
    >>> truth = scan_pdf(Path("manual.pdf"), [3, 4], Path("scan.pdf"), noisy=True)
    >>> cer(ocr_text, truth[0])
    0.021
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np


def page_texts(pdf: Path, pages: list[int]) -> list[str]:
    """The text layer of ``pages`` (1-based) of ``pdf``."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    try:
        return [doc[p - 1].get_textpage().get_text_bounded() for p in pages]
    finally:
        doc.close()


def scan_image(pdf: Path, page: int, dpi: int = 300, noisy: bool = False, seed: int = 0):
    """One page as a PIL image; ``noisy``: gaussian noise, blur, a 0.6° skew, JPEG at quality 60, at 200 dpi."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageFilter

    doc = pdfium.PdfDocument(pdf)
    try:
        img = doc[page - 1].render(scale=(200 if noisy else dpi) / 72).to_pil().convert("L")
    finally:
        doc.close()
    if not noisy:
        return img
    rng = np.random.default_rng(seed)
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, 18, (img.height, img.width))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8))
    img = img.rotate(0.6, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=60)
    return Image.open(io.BytesIO(buf.getvalue()))


def scan_pdf(pdf: Path, pages: list[int], out: Path, noisy: bool = False, dpi: int = 300) -> list[str]:
    """Write an image-only PDF of ``pages`` of ``pdf`` to ``out``; return each page's true text."""
    images = [scan_image(pdf, p, dpi, noisy, seed=p) for p in pages]
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=200 if noisy else dpi)
    return page_texts(pdf, pages)


def normalise(text: str) -> str:
    """One space between words, no line-break hyphens, plain quotes: layout is not what OCR is judged on."""
    text = text.replace("\r", "").replace("-\n", "")
    for a, b in (("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"'), ("–", "-"), ("—", "-"), ("\ufffe", ""), ("\x02", "")):
        text = text.replace(a, b)
    return re.sub(r"\s+", " ", text).strip()


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate: edit distance over the reference's length, after :func:`normalise`."""
    from rapidfuzz.distance import Levenshtein

    ref = normalise(reference)
    return Levenshtein.distance(normalise(hypothesis), ref) / max(1, len(ref))
