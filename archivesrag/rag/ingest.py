"""Ingest documents into an index: load, chunk, embed, store; incremental and one file at a time.

Formats: PDF (pypdfium2, one record per page so citations can name the page), passages JSONL from scrape.py (url and
title kept), ``.txt``/``.md``, ``.html``/``.htm``. Chunks come from LangChain's RecursiveCharacterTextSplitter.

Incremental: a file whose bytes are unchanged since the last ingest is skipped; a changed file replaces its old
chunks; a chunk whose text is already in the index is not stored twice. Each file is committed on its own, so a
killed ingest keeps every file finished before it, and a rerun finishes the rest. A file that cannot be read
(encrypted, scanned with no text layer, malformed, empty) gets one line and a count; the others go on.

Example:
    >>> report = ingest(["docs/"], "my-index", load_embedder("bundled"))
    >>> report.summary()
    '12 files: 10 indexed (431 chunks), 1 unchanged, 1 failed (encrypted 1)'
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archivesrag.embedder import Embedder
from archivesrag.errors import UserError
from archivesrag.htmltext import extract_page
from archivesrag.rag.ocr import OCR_MODES
from archivesrag.rag.pdftext import page_text
from archivesrag.rag.store import Chunk, IndexStore
from archivesrag.records import RecordError, file_sha256, line_number, parse_passage, read_records, text_hash
from archivesrag.workers import spawn_pool

log = logging.getLogger(__name__)

SUFFIXES = {".pdf", ".jsonl", ".txt", ".md", ".html", ".htm"}
PDFIUM_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD
HEADING_WORDS = 6  # words of a bookmarked heading enough to find it on its page
MIN_PIECE_CHARS = 100  # a shorter run above a page's first heading joins that heading's section
RUN_ON_CHARS = 300  # of a page's run-on end carried to the next page's first chunk (see run_on_tail)
COMMIT_EVERY_S = 5.0  # commit what is parsed at least this often, even when fewer than batch_chunks


class FileSkipped(Exception):
    """A file that cannot be ingested; ``reason`` is a short category for the summary."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class Section:
    """A loaded piece of a file before chunking (a PDF page, a passage, a whole text file)."""

    text: str
    page: int | None = None
    url: str | None = None
    title: str | None = None
    line: int | None = None  # of a JSONL file
    headings: str | None = None
    ocr: bool = False


@dataclass
class IngestReport:
    """Per-file outcome of one ingest run."""

    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    chunks_added: int = 0
    pages: int = 0
    ocr_pages: int = 0

    def summary(self) -> str:
        n = len(self.indexed) + len(self.unchanged) + len(self.failed)
        ocr = f", {self.ocr_pages} page{'s' * (self.ocr_pages != 1)} by OCR" if self.ocr_pages else ""
        text = (
            f"{n} files: {len(self.indexed)} indexed ({self.chunks_added} new chunks{ocr}), "
            f"{len(self.unchanged)} unchanged"
        )
        if self.failed:
            text += (
                f", {len(self.failed)} failed (" + ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())) + ")"
            )
        return text


def _open_pdf(path: Path) -> Any:
    """A pypdfium2 document, or :class:`FileSkipped` for an encrypted or unreadable file."""
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(path)  # an empty user password (owner-only protection) opens as is
    except pdfium.PdfiumError as err:
        if getattr(err, "err_code", None) == PDFIUM_PASSWORD_ERROR:
            raise FileSkipped("encrypted", "encrypted PDF (password needed); decrypt it first") from None
        raise FileSkipped("malformed", f"not a readable PDF ({str(err).splitlines()[0][:100]})") from None


def _pdf_title(doc: Any) -> str | None:
    try:
        return (doc.get_metadata_dict().get("Title") or "").strip() or None
    except Exception:  # damaged metadata must not cost the text
        return None


def pdf_outline(doc: Any) -> dict[int, list[str]]:
    """The PDF's bookmarks as heading paths ("Chapter › Section"), by 0-based page index, in document order.

    Manuals made by DocBook, LaTeX or office tools carry their table of contents as bookmarks; a chunk that knows
    its section ("How does one pronounce Debian and what does this word mean?") is found by questions worded like
    the heading, and its citation can name it. A damaged or absent outline gives ``{}``.
    """
    marks: dict[int, list[str]] = {}
    stack: list[str] = []
    try:
        for mark in doc.get_toc():
            title = " ".join((mark.get_title() or "").split())
            dest = mark.get_dest()
            index = dest.get_index() if dest is not None else None
            del stack[mark.level :]
            stack.append(title)
            if title and index is not None:
                marks.setdefault(index, []).append(" › ".join(t for t in stack if t))
    except Exception as err:  # a damaged outline must not cost the text
        log.info("%s: outline unreadable (%s); pages kept without headings", doc, str(err).splitlines()[0][:100])
    return marks


Piece = tuple[str, "str | None"]  # a run of page text and the heading path it sits under


def split_at_headings(text: str, paths: list[str], current: str | None) -> tuple[list[Piece], str | None]:
    r"""Cut one page's text where each bookmarked heading starts, so each piece carries its own heading path.

    A heading is found by its first words in order (the page may number it, wrap it or curl its quotes), its
    number kept with it; one not found on the page still starts its section from the last heading found. Returns
    the ``(text, path)`` pieces and the path in force at the page's end (the next page starts in it).

    Example:
        >>> text = "...the end of what.\n1.2 Why? " + "Because. " * 12
        >>> pieces, current = split_at_headings(text, ["Intro › Why?"], "Intro › What?")
        >>> [(t[:14], path) for t, path in pieces], current
        ([('...the end of ', 'Intro › Why?')], 'Intro › Why?')
        >>> pieces, _ = split_at_headings("x" * 100 + "\n" + text[20:], ["Intro › Why?"], "Intro › What?")
        >>> [(t[:8], path) for t, path in pieces]
        [('xxxxxxxx', 'Intro › What?'), ('1.2 Why?', 'Intro › Why?')]
    """
    pieces: list[Piece] = []
    heads: list[str | None] = []  # the heading each piece starts with (None: the run above the page's first)
    start, head = 0, None
    for path in paths:
        title = path.rsplit(" › ", 1)[-1]
        # its first words, as written: a running header repeats headings in capitals, a line may break a long one
        words = re.findall(r"[^\W_]+", title)[:HEADING_WORDS]
        found = re.compile(r"\W+".join(map(re.escape, words))).search(text, start) if words else None
        if found:
            cut = text.rfind("\n", start, found.start()) + 1  # the heading's line, with its number ("1.2 ")
            cut = cut if re.fullmatch(r"[\d.\s]*", text[max(cut, start) : found.start()]) else found.start()
            cut = max(cut, start)
            if text[start:cut].strip():
                pieces.append((text[start:cut], current))
                heads.append(head)
            start, head = cut, title
        current = path
    if text[start:].strip():
        pieces.append((text[start:], current))
        heads.append(head)
    return _merge_scraps(pieces, heads), current


def _is_scrap(text: str, head: str | None) -> bool:
    """Too little to stand alone: a heading with no text under it on this page ("1. Introduction" just above
    "1.1 Version"), or a short run above the page's first heading (a running header, a "Chapter 3" line)."""
    return len(text.strip()) < (len(head) + 20 if head else MIN_PIECE_CHARS)


def _merge_scraps(pieces: list[Piece], heads: list[str | None]) -> list[Piece]:
    """Join each scrap (:func:`_is_scrap`) to the piece after it, which gives the heading path (a chapter's
    heading then sits in its first section's chunk), or the page's last scrap to the piece before it: a chunk of
    a few words only adds noise to retrieval. A section with any text, however short (an FAQ's one-line answer),
    keeps its own piece and heading."""
    merged: list[Piece] = []
    carry = ""
    for (text, path), head in zip(pieces, heads, strict=True):
        if _is_scrap(text, head):
            carry += text
            continue
        merged.append((carry + text, path))
        carry = ""
    if carry:
        merged[-1:] = [(merged[-1][0] + carry, merged[-1][1])] if merged else [(carry, pieces[-1][1])]
    return merged


def _line_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())


def _edge_numbers(line: str) -> set[int]:
    """The whole numbers a line starts or ends with ("52 Chapter 5. Managing Packages", "Chapter 8: Command Line
    Editing 122"), where a running head or footer prints its page number, and the first of a page range it ends
    with ("… | January 11, 2022 | 1–8", a paper's first page); not a section number ("5.11.").

    Example:
        >>> sorted(_edge_numbers("Rcpp Vignette | January 11, 2022 | 1–8")), sorted(_edge_numbers("5.11. NMUs 51"))
        ([1, 8], [51])
    """
    found = set()
    if m := re.match(r"\s*(\d+)(?![\d.])", line):
        found.add(int(m[1]))
    if m := re.search(r"(?<![\d.])(\d+)(?:\s*[–-]\s*(\d+))?\s*$", line):  # a number, or a range: "… | 1–8"
        found.update(int(n) for n in m.groups() if n)
    return found


def _page_number_offset(lines: list[list[str]]) -> int | None:
    """Printed page number minus page index, when at least 3 pages (and a tenth of them) print it at the start or
    end of their first or last line; else None."""
    offsets: Counter[int] = Counter()
    for i, ls in enumerate(lines):
        if ls:
            offsets.update({n - i for n in _edge_numbers(ls[0]) | _edge_numbers(ls[-1])})
    if not offsets:
        return None
    offset, pages = offsets.most_common(1)[0]
    return offset if pages >= max(3, len(lines) // 10) else None


def strip_running_lines(pages: list[str]) -> list[str]:
    r"""Drop running headers and footers: a page's first or last line that prints the page's own number (at its
    start or end, where the document prints it on 3 pages and a tenth), and one that, numbers aside, is the first
    or last line of at least half the pages (and of 3), kept where it first appears (the title page).

    Why: "Shared MIME-info Database" atop every page of a spec otherwise matches every question about the spec,
    its chunks win on it, and the snippet shown is the header itself; a footer's page number ends each chunk. A
    book that heads each page with its chapter or section and the page number ("Chapter 8: Command Line Editing
    122", the Bash manual; "5.11. Non-Maintainer Uploads (NMUs) 51", the Developer's Reference) has no such line
    on half its pages, yet it sat in every chunk and cut in two each sentence that runs on to the next page.

    Example:
        >>> strip_running_lines(["Spec\nIntro.\n1", "Spec\nGlobs.\n2", "Spec\nMagic.\n3"])
        ['Spec\nIntro.', 'Globs.', 'Magic.']
        >>> pages = ["Title", "Ch 1: Use 1\nA.", "Ch 1: Use 2\nB.", "2 Why\nC.", "1.1 Note 4\nD.", "E", "F"]
        >>> strip_running_lines(pages)[:5]
        ['Title', 'A.', 'B.', '2 Why\nC.', 'D.']
    """
    lines = [text.strip("\n").split("\n") for text in pages]
    offset = _page_number_offset(lines)
    if offset is not None:
        for i, ls in enumerate(lines):
            for end in (0, -1):
                if ls and i + offset in _edge_numbers(ls[end]):
                    ls.pop(end)
    enough = max(3, len(pages) // 2)
    for end in (0, -1):
        counts = Counter(_line_key(ls[end]) for ls in lines if ls and ls[end].strip())
        running = {key for key, n in counts.items() if n >= enough}
        seen: set[str] = set()
        for ls in lines:
            key = _line_key(ls[end]) if ls and ls[end].strip() else ""
            if key in running:
                if key in seen:
                    ls.pop(end)
                seen.add(key)
    return ["\n".join(ls) for ls in lines]


def run_on_tail(page: str, max_chars: int = RUN_ON_CHARS) -> str:
    r"""The start of the sentence a page ends in, when it runs on to the next page (at most its last ``max_chars``,
    cut at a word); empty when the page ends its sentence. :func:`load_pdf` asks only where the next page starts
    in lower case, in mid-sentence (not at a running head, a heading or a new paragraph).

    Why: chunks never cross pages, so the Bash manual's "If the number of possible completions is greater than
    or equal to this value, Readline will ask whether or not the user wishes to view" | "them; otherwise, they
    are simply listed. ... The default limit is 100." left the next page's first chunk starting at "them":
    asked the default, retrieval could not find it. Prefixed with the sentence's start, the chunk reads whole.
    Only that sentence is carried, not the whole ones before it: a fact the chunk carried would be cited by the
    next page's number.

    Example:
        >>> run_on_tail("A term. The thing that sets it. If set, it will ask whether to")
        'If set, it will ask whether to'
        >>> run_on_tail("It ends here.")
        ''
    """
    text = page.rstrip()
    if not re.search(r"[\w,\-]$", text):
        return ""
    ends = [m.end() for m in re.finditer(r"[.!?:]\s+", text)]
    start = max(ends[-1] if ends else 0, len(text) - max_chars)
    if start and not text[start - 1].isspace() and " " in text[start:]:
        start = text.index(" ", start) + 1  # a word cut at the start is dropped
    return text[start:]


def join_run_on(tail: str, text: str) -> str:
    """The next page's ``text`` after the ``tail`` of the sentence that runs on to it (:func:`run_on_tail`); a word
    hyphenated across the page break is joined ("this pa-" | "per. However" reads "this paper. However").

    Example:
        >>> join_run_on("beyond the scope of this pa-", "per. However"), join_run_on("the", "archivist asks")
        ('beyond the scope of this paper. However', 'the\\narchivist asks')
    """
    body = text.lstrip()
    if re.search(r"[a-z]-$", tail) and body[:1].islower():
        return tail[:-1] + body
    return f"{tail}\n{text}"


def load_pdf(path: Path, ocr: str = "auto") -> list[Section]:
    """Sections per page, cut where a bookmarked heading starts (each with its heading path, see
    :func:`pdf_outline`), from the text layer (pypdfium2: keeps the spaces that pypdf loses in LaTeX PDFs, and
    13x faster here; footnote marks and exponents set apart from the words, see :mod:`.pdftext`), or by OCR for a
    page without one (``ocr``: auto / off / force; see :mod:`.ocr`).

    OCR shows a progress bar per page; a page that cannot be rendered or read is one warning, not a failure.
    """
    from tqdm import tqdm

    from archivesrag.rag import ocr as ocr_mod

    doc = _open_pdf(path)
    try:
        title = _pdf_title(doc)
        texts, scans = [], []
        for i in range(len(doc)):
            page = doc[i]
            try:
                text = page_text(page.get_textpage())
            except Exception:  # a damaged content stream: no text layer on this page
                text = ""
            texts.append(text)
            if ocr_mod.page_needs_ocr(text, page, ocr):
                scans.append(i)
        read: dict[int, str] = {}
        bar = tqdm(scans, desc=f"OCR {path.name}", unit="page", disable=not scans, leave=False)
        for i in bar:
            try:
                read[i] = ocr_mod.ocr_page(doc[i]).text
            except Exception as err:
                log.warning("%s page %d: OCR failed (%s); page skipped", path, i + 1, str(err).splitlines()[0][:100])
        outline = pdf_outline(doc)
        sections: list[Section] = []
        heading: str | None = None
        pages = strip_running_lines([read.get(i, text) for i, text in enumerate(texts)])
        for i, text in enumerate(pages):
            before = heading
            pieces, heading = split_at_headings(text, outline.get(i, []), heading)
            runs_on = i and pieces and pieces[0][1] == before and pieces[0][0].lstrip()[:1].islower()
            if runs_on and (tail := run_on_tail(pages[i - 1])):
                pieces[0] = (join_run_on(tail, pieces[0][0]), pieces[0][1])
            sections += [Section(t, i + 1, title=title, headings=h, ocr=i in read) for t, h in pieces]
    finally:
        doc.close()
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        if ocr == "off":
            raise FileSkipped("no_text", "no text layer (a scanned PDF?); ingest with --ocr auto to read it by OCR")
        raise FileSkipped("no_text", "no text layer and OCR found no text on its pages")
    return sections


def load_passages(path: Path) -> list[Section]:
    """A passages JSONL (scrape.py's output or the user's): one section per line, with its line number, so a
    citation can say where it is even when the passage has no url or title."""

    def parse(obj: dict[str, Any], where: str) -> Section:
        p = parse_passage(obj, where)
        headings = " › ".join(p.headings) if p.headings else None
        return Section(p.text, p.page, p.url, p.title, line_number(where), headings)

    return read_records(path, parse)


def load_html(path: Path) -> list[Section]:
    """A saved web page, read as the crawler reads a fetched one (:func:`~archivesrag.htmltext.extract_page`): one
    section per passage, with the page title and its heading path; menus and link lists left out."""
    page = extract_page(path.read_bytes(), path.resolve().as_uri())
    return [Section(p.text, title=page.title, headings=" › ".join(p.headings) or None) for p in page.passages]


def load_file(path: Path, ocr: str = "auto") -> list[Section]:
    """Sections of one file by its suffix; raises :class:`FileSkipped` when it cannot be used."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        sections = load_pdf(path, ocr)
    elif suffix == ".jsonl":
        try:
            sections = load_passages(path)
        except RecordError as err:
            raise FileSkipped("malformed", str(err)) from None
    elif suffix in (".html", ".htm"):
        sections = load_html(path)
    else:
        try:
            sections = [Section(text=path.read_text(encoding="utf-8"))]
        except UnicodeDecodeError:
            raise FileSkipped("malformed", "not UTF-8 text") from None
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise FileSkipped("empty", "no text in this file")
    return sections


def _load_in_worker(path: str, ocr: str = "auto") -> tuple[str, Any, str]:
    """:func:`load_file` for a worker process: ``("ok", sections, "")`` or ``("skip", reason, detail)`` (an
    exception with extra fields does not survive the trip back)."""
    try:
        return "ok", load_file(Path(path), ocr), ""
    except FileSkipped as err:
        return "skip", err.reason, str(err)


class Prefetcher:
    """Parses the files an ingest needs in worker processes, a few files ahead of the embedder.

    Parsing PDFs is pure Python on one core. Meanwhile this process imports torch and loads the model (8 s of
    one core here, the other idle) and then embeds, so the pages are ready when the model is. At most ``ahead``
    parsed files wait in memory.

    Example:
        >>> pre = Prefetcher([Path("a.pdf"), Path("b.pdf")])
        >>> sections = pre.load(Path("a.pdf"))  # FileSkipped as load_file would raise it
        >>> pre.close()
    """

    def __init__(self, files: list[Path], workers: int | None = None, ahead: int = 8, ocr: str = "auto") -> None:
        self.queue = list(reversed(files))
        self.futures: dict[Path, Future] = {}
        self.ahead = ahead
        self.ocr = ocr
        self.pool = spawn_pool(workers or max(1, min(4, (os.cpu_count() or 2) - 1)))
        self._top_up()

    def _top_up(self) -> None:
        while self.queue and len(self.futures) < self.ahead:
            path = self.queue.pop()
            self.futures[path] = self.pool.submit(_load_in_worker, str(path), self.ocr)

    def load(self, path: Path) -> list[Section]:
        """The sections of ``path`` (parsed here if it was not queued); raises :class:`FileSkipped`."""
        future = self.futures.pop(path, None)
        self._top_up()
        if future is None:
            return load_file(path, self.ocr)
        try:
            status, value, detail = future.result()
        except BrokenProcessPool:  # a worker died (out of memory on a huge PDF?): try once more in this process
            log.warning("%s: the parse worker died; parsing here instead", path)
            return load_file(path, self.ocr)
        if status == "skip":
            raise FileSkipped(value, detail)
        return value

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def chunk_sections(source: str, sections: list[Section], chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Split sections into chunks that keep their page/url/title (never across pages)."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    chunks = []
    for s in sections:
        for piece in splitter.split_text(s.text):
            chunks.append(
                Chunk(
                    text=piece,
                    source=source,
                    page=s.page,
                    url=s.url,
                    title=s.title,
                    chunk_hash=text_hash(f"{s.url or ''}|{piece}"),
                    line=s.line,
                    headings=s.headings,
                    ocr=s.ocr,
                )
            )
    return chunks


def is_document(f: Path, root: Path) -> bool:
    """A supported, non-hidden file under ``root``."""
    hidden = any(part.startswith(".") for part in f.relative_to(root).parts)
    return f.is_file() and f.suffix.lower() in SUFFIXES and not hidden


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files to ingest: given files, and supported files under given directories (sorted)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            # Hidden entries (.git, an index kept inside the data folder) are not documents.
            out += sorted(f for f in p.rglob("*") if is_document(f, p))
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"{p}: no such file or directory")
    return list(dict.fromkeys(f.resolve() for f in out))


def known_hashes(index_dir: str | Path) -> dict[str, str]:
    """Content hash of every file already in the index at ``index_dir`` (empty when there is none yet)."""
    if not (Path(index_dir) / "chunks.sqlite").exists():
        return {}
    try:
        store = IndexStore.open(index_dir, create=False)
    except UserError:
        return {}
    try:
        return store.sources()
    finally:
        store.close()


def ingest(
    paths: list[str | Path],
    index_dir: str | Path,
    embedder: Embedder | Callable[[], Embedder],
    chunk_size: int = 1000,
    chunk_overlap: int = 150,
    show_progress: bool = True,
    batch_chunks: int = 256,
    on_file: Callable[[int, int, str], None] | None = None,
    index_type: str | None = None,
    ocr: str = "auto",
) -> IngestReport:
    """Ingest files and directories into the index at ``index_dir`` (created on first use).

    Args:
        embedder: the model, or a function that loads it: then the files are already being parsed in a worker
            process while it loads (see :class:`Prefetcher`).
        batch_chunks: embed this many chunks at once, across files (each file is still committed on its own).
        on_file: called as ``on_file(done, total, name)`` before each file (the Gradio app shows it as progress).
        index_type: ``auto``/``flat``/``hnsw`` to store in the index (see :mod:`archivesrag.rag.store`).
        ocr: PDF pages without a text layer: ``auto`` reads them by OCR, ``off`` skips them, ``force`` OCRs every
            page (see :mod:`archivesrag.rag.ocr`).
    """
    from tqdm import tqdm

    if chunk_overlap >= chunk_size:
        raise UserError("--chunk_overlap must be smaller than --chunk_size")
    if ocr not in OCR_MODES:
        raise UserError(f"--ocr {ocr}: use one of {', '.join(OCR_MODES)}")
    files = expand_paths(paths)
    known = known_hashes(index_dir)
    digests = {path: file_sha256(path) for path in files}
    todo = [path for path in files if known.get(str(path)) != digests[path]]
    changed = set(todo)
    prefetch = Prefetcher(todo, ocr=ocr) if len(todo) > 1 or any(p.suffix.lower() == ".pdf" for p in todo) else None
    try:
        if not isinstance(embedder, Embedder):
            embedder = embedder()
        store = IndexStore.open(index_dir, model_name=embedder.name, dim=embedder.dim, index_type=index_type)
    except BaseException:
        if prefetch is not None:
            prefetch.close()
        raise
    report = IngestReport()
    # Chunks of several files are embedded together (small per-file batches waste the CPU), then each file is
    # committed on its own: a kill loses at most the files still pending, and a rerun redoes just those.
    pending: list[tuple[str, str, list[Chunk]]] = []

    def commit_pending() -> None:
        if not pending:
            return
        vecs = embedder.encode_passages([c.search_text for _, _, chunks in pending for c in chunks])
        offset = 0
        for source, digest, chunks in pending:
            report.chunks_added += store.replace_source(source, digest, chunks, vecs[offset : offset + len(chunks)])
            offset += len(chunks)
            report.indexed.append(source)
        pending.clear()

    last_commit = time.monotonic()
    try:
        for done, path in enumerate(tqdm(files, desc="ingest", unit="file", disable=not show_progress)):
            if on_file is not None:
                on_file(done, len(files), path.name)
            source, digest = str(path), digests[path]
            if path not in changed:  # same bytes as when last ingested
                report.unchanged.append(source)
                continue
            try:
                sections = prefetch.load(path) if prefetch is not None else load_file(path, ocr)
            except FileSkipped as err:
                report.failed[source] = f"{err.reason}: {err}"
                report.reasons[err.reason] += 1
                log.warning("%s: skipped, %s", path, err)
                continue
            pending.append((source, digest, chunk_sections(source, sections, chunk_size, chunk_overlap)))
            report.pages += len(sections)
            report.ocr_pages += sum(s.ocr for s in sections)
            # Slow files (OCR: seconds a page) are committed as they come, so a kill loses little work.
            if sum(len(c) for _, _, c in pending) >= batch_chunks or time.monotonic() - last_commit > COMMIT_EVERY_S:
                commit_pending()
                last_commit = time.monotonic()
        commit_pending()
        store.flush()
    finally:
        store.close()
        if prefetch is not None:
            prefetch.close()
    log.info("ingest into %s: %s", index_dir, report.summary())
    return report
