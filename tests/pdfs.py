"""Real PDFs of the kinds users bring, made by real producers (fpdf2, Pillow, pypdf) from real public-domain
text (the US Constitution in data/sample): text, two-column, scanned (image only), encrypted, malformed."""

from __future__ import annotations

import json
from pathlib import Path

from fpdf import FPDF

ROOT = Path(__file__).resolve().parents[1]


def sample_passages() -> list[dict]:
    return [json.loads(line) for line in (ROOT / "data" / "sample" / "passages.jsonl").read_text().splitlines()]


def _pdf(title: str) -> FPDF:
    pdf = FPDF()
    pdf.set_title(title)
    pdf.set_font("Helvetica", size=11)
    return pdf


def text_pdf(path: Path, pages: list[str], title: str = "Constitution excerpts") -> Path:
    """One passage per page."""
    pdf = _pdf(title)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def outlined_pdf(path: Path, chapters: dict[str, dict[str, str]], title: str = "Records manual") -> Path:
    """A manual with bookmarks, as DocBook, LaTeX and office tools make it: each chapter and section starts with
    its numbered heading, recorded in the outline; each chapter on a new page. A '-' ending a line is a word broken
    across the line (PDFium reports it as a line-end hyphen)."""
    pdf = _pdf(title)
    for c, (chapter, sections) in enumerate(chapters.items(), 1):
        pdf.add_page()
        pdf.start_section(chapter)
        pdf.multi_cell(0, 6, f"{c}. {chapter}", new_x="LMARGIN", new_y="NEXT")
        for s, (heading, body) in enumerate(sections.items(), 1):
            pdf.start_section(heading, level=1)
            pdf.multi_cell(0, 6, f"{c}.{s} {heading}\n{body}", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def html_pdf(path: Path, html: str, title: str = "Footnoted") -> Path:
    """One page typeset by fpdf2 from simple HTML: ``<sup>`` sets a smaller, raised run as LaTeX and office tools
    set footnote marks and exponents."""
    pdf = _pdf(title)
    pdf.add_page()
    pdf.write_html(html)
    pdf.output(str(path))
    return path


def paper_pdf(path: Path, pages: list[tuple[str, str]]) -> Path:
    """A paper's pages, as LaTeX journal templates set them: the body in 11 pt, a footer in 7 pt at the foot of
    the page (its page range on the first page, its page number on the others), drawn after the body."""
    pdf = _pdf("A paper")
    pdf.set_auto_page_break(False)
    for body, footer in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, body)
        pdf.set_y(-15)
        pdf.set_font("Helvetica", size=7)
        pdf.cell(0, 5, footer)
    pdf.output(str(path))
    return path


def two_column_pdf(path: Path, texts: list[str]) -> Path:
    pdf = _pdf("Two columns")
    pdf.add_page()
    with pdf.text_columns(ncols=2, gutter=8) as cols:
        for t in texts:
            cols.write(text=t + "\n\n")
    pdf.output(str(path))
    return path


def scanned_pdf(path: Path, text: str) -> Path:
    """A page that is only a picture of text: what a scanner without OCR produces."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(img)
    for i in range(0, len(text), 80):
        draw.text((60, 60 + 20 * (i // 80)), text[i : i + 80], fill="black")
    img.save(path, "PDF", resolution=150)
    return path


def encrypted_pdf(path: Path, source: Path, password: str = "secret") -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=password, owner_password=password, algorithm="AES-128")
    with path.open("wb") as f:
        writer.write(f)
    return path


def malformed_pdf(path: Path, source: Path) -> Path:
    """The first 300 bytes of a real PDF: a download cut short."""
    path.write_bytes(source.read_bytes()[:300])
    return path
