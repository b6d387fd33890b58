"""HTML -> title, links and passages with their heading path. Pure functions, so they run in worker processes.

Shared by two stages: the crawler parses every fetched page with it, and ``rag.py ingest`` reads a local ``.html``
file with it, so a saved page and the same page crawled become the same passages (heading paths, no menus).

Parsing is lxml (the fast parser; BeautifulSoup's html.parser is the known bottleneck on link-heavy pages).
Text comes from the config's ``search_contents`` selectors in document order; each h1-h6 met on the way updates
the heading path that passages carry. When the selectors find nothing, trafilatura's main-content extraction
takes over (``fallback``). Long sections are split on paragraph boundaries, never mid-paragraph unless a single
paragraph is itself too long.

Example:
    >>> page = extract_page("<title>T</title><h1>A</h1><p>Some words here.</p>", "https://x.org/", min_chars=1)
    >>> page.passages[0].headings, page.passages[0].text
    (['A'], 'Some words here.')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin

HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
SKIP_TAGS = {"script", "style", "noscript", "template", "svg"}
CONTROL_TAGS = ("a", "button")
CELL_TAGS = ("th", "td")
STUB_CHARS = 80  # a selected block this short whose every word is a link or a button is navigation, not content
# What a permalink anchor shows: Sphinx and MkDocs write "¶" after every heading and option, others "#", "§", a link
# emoji, or a zero-width space (Docusaurus).
PERMALINK_MARKS = frozenset(("¶", "#", "§", "🔗", "\u200b"))
WS = re.compile(r"\s+")
# Preformatted text (a man page set in <pre>, a plain-text document, a code block): a blank line parts paragraphs,
# a word a formatter hyphenated at a line end is joined, and a flush-left line in capitals heads what follows it (a
# man page's "DESCRIPTION", "CONFIGURATION PARAMETERS").
PRE_PARAGRAPH = re.compile(r"\n[ \t]*\n")
PRE_HYPHEN = re.compile(r"(?<=[A-Za-z])-\n[ \t]*(?=[a-z])")
PRE_HEADING = re.compile(r"[A-Z][A-Z0-9()]*(?: [A-Z][A-Z0-9()]*)*")
PRE_HEADING_CHARS = 40
PRE_LEVEL = 7  # below any h1-h6 of the page, so the page's own headings stay above it


@dataclass
class PagePassage:
    text: str
    headings: list[str]


@dataclass
class PageContent:
    """What one HTML page yields; ``via`` says which extractor produced the passages."""

    title: str | None
    links: list[str] = field(default_factory=list)
    passages: list[PagePassage] = field(default_factory=list)
    via: str = "selectors"


def _matches(el, selectors: list[dict[str, str]]) -> bool:
    for sel in selectors:
        if "tag" in sel and el.tag != sel["tag"].lower():
            continue
        if "class" in sel and sel["class"] not in (el.get("class") or "").split():
            continue
        if "style" in sel and sel["style"] not in (el.get("style") or ""):
            continue
        return True
    return False


def _text(el) -> str:
    return WS.sub(" ", el.text_content()).strip()


def is_control_stub(el, text: str) -> bool:
    """A short block made only of links and buttons: a menu entry ("Home", "Download"), a table-of-contents line,
    a diagram's "expr: show" toggle. Left out, they took 20 pages of the SQLite documentation from 248 passages to
    225; a list of toggles glued to the paragraph after it had kept that paragraph from being retrieved.

    Example:
        >>> from lxml import html
        >>> is_control_stub(html.fromstring('<li><a href="/">Home</a></li>'), "Home")
        True
        >>> is_control_stub(html.fromstring('<li>Use <a href="/x">dpkg</a> to install.</li>'), "Use dpkg to install.")
        False
    """
    if len(text) > STUB_CHARS:
        return False
    controls = "".join(
        c.text_content() for c in el.iter(*CONTROL_TAGS) if not any(a.tag in CONTROL_TAGS for a in c.iterancestors())
    )
    return WS.sub("", controls) == WS.sub("", text)


def _blocks(root, selectors: list[dict[str, str]]) -> list[tuple[list[str], str]]:
    """(heading path, text) for each selected element in document order; nested matches are taken once. Links-only
    stubs (:func:`is_control_stub`) are left out, unless the page has nothing else (a hub that is a list of links).

    A table row is one block, its cells apart ("Default — DeflateBufferSize 8096"); a row that holds selected
    blocks itself (a page laid out in a table) is not, its blocks are. A ``<pre>`` is one block per paragraph, under
    the man page section it sits in (:func:`_pre_blocks`).

    A definition list's terms head the description that follows them ("-l, --local — When the repository…"), so
    the packing into passages never parts an option from what it does, nor the sentence splitter (a colon ends a
    sentence there) the snippet from its option.

    Example:
        >>> from lxml import html
        >>> _blocks(html.fromstring("<dl><dt>-l</dt><dt>--local</dt><dd><p>Copy.</p></dd></dl>"), [{"tag": "dt"},
        ...         {"tag": "dd"}])
        [([], '-l, --local — Copy.')]
    """
    path: list[tuple[int, str]] = []
    out: list[tuple[list[str], str, bool]] = []
    taken: set = set()
    terms: list[str] = []  # the <dt> texts met since the last block, waiting for their <dd>

    def flush_terms() -> None:
        if terms:
            out.append(([t for _, t in path], ", ".join(terms), False))
            terms.clear()

    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in SKIP_TAGS:
            continue
        if any(a in taken for a in el.iterancestors()):
            continue
        level = HEADINGS.get(el.tag)
        if level:
            flush_terms()
            title = _text(el)
            path = [(lv, t) for lv, t in path if lv < level] + ([(level, title)] if title else [])
            continue
        if _matches(el, selectors):
            if el.tag == "tr" and _holds_blocks(el, selectors):
                continue  # a layout table's row: its paragraphs and lists are the blocks
            taken.add(el)
            if el.tag == "pre":
                flush_terms()
                outer = path
                for heading, text in _pre_blocks(el.text_content()):
                    path = [*outer, (PRE_LEVEL, heading)] if heading else outer
                    out.append(([t for _, t in path], text, False))
                path = outer
                continue
            text = _row_text(el) if el.tag == "tr" else _text(el)
            if not text:
                continue
            if el.tag == "dt":
                terms.append(text)
                continue
            if el.tag == "dd" and terms:
                text = f"{', '.join(terms)} — {text}"  # a dash, not a colon: a colon ends a sentence for the snippet
                terms.clear()
            flush_terms()
            out.append(([t for _, t in path], text, is_control_stub(el, text)))
    flush_terms()
    keep_stubs = all(stub for *_, stub in out)
    return [(headings, text) for headings, text, stub in out if keep_stubs or not stub]


def _pre_blocks(text: str) -> list[tuple[str | None, str]]:
    r"""A ``<pre>``'s paragraphs, each with the section heading it sits under (or None): one block per paragraph, its
    lines kept (each with its spaces squeezed), a word hyphenated at a line end joined, a man page's section line
    (flush left, in capitals, with indented lines under it) the heading of what follows.

    Read as one block, a man page set in one ``<pre>`` (Postfix's manual pages, the man2html style) was a single run
    of 10,000 characters with no headings, cut at 1,500 characters wherever a sentence ended, its words hyphenated
    ("con- figuration") and each option's name run into the text before it.

    Example:
        >>> _pre_blocks("DESCRIPTION\n       The queue is in /var/spool/post-\n       fix.\n\n       -v     Verbose.\n")
        [('DESCRIPTION', 'The queue is in /var/spool/postfix.'), ('DESCRIPTION', '-v Verbose.')]
    """
    out: list[tuple[str | None, str]] = []
    heading: str | None = None
    for paragraph in PRE_PARAGRAPH.split(PRE_HYPHEN.sub("", text.expandtabs())):
        lines = [line.rstrip() for line in paragraph.splitlines() if line.strip()]
        if not lines:
            continue
        first = lines[0]
        under = lines[1:]
        if (
            len(first) <= PRE_HEADING_CHARS
            and PRE_HEADING.fullmatch(first)
            and under
            and all(line[:1].isspace() for line in under)
        ):
            heading, lines = first, under
        out.append((heading, "\n".join(" ".join(line.split()) for line in lines)))
    return out


def _row_text(row) -> str:
    """A table row's cells, each without the colon that labels it, joined by dashes: "Default:" | "DeflateBufferSize
    8096" -> "Default — DeflateBufferSize 8096". Cells run together ("Default:DeflateBufferSize 8096") otherwise,
    and a colon would end a sentence for the snippet (as for a definition list's terms).

    Example:
        >>> from lxml import html
        >>> _row_text(html.fromstring("<table><tr><th>Default:</th><td>Off</td><td></td></tr></table>").find(".//tr"))
        'Default — Off'
    """
    cells = [_text(c).rstrip(":").strip() for c in row if isinstance(c.tag, str) and c.tag in CELL_TAGS]
    return " — ".join(c for c in cells if c)


def _holds_blocks(row, selectors: list[dict[str, str]]) -> bool:
    """The row is laid out, not a row of data: it holds a heading, or one of its cells holds more than one element
    the selectors take, or one that is not a paragraph (a list, a nested table's row).

    A cell that wraps its text in one paragraph is still a data cell: Sphinx and docutils write every cell as
    ``<td><p>RUNTIME</p></td>``. Taken as layout, the CMake manual's tables fell apart into one block per cell, and a
    cell that was a link ("NVIDIA HPC Compiler") was then dropped as a navigation stub.

    Example:
        >>> from lxml import html
        >>> row = lambda cells: html.fromstring(f"<table><tr>{cells}</tr></table>").find(".//tr")
        >>> _holds_blocks(row("<td><p>RUNTIME</p></td><td><p>bin</p></td>"), [{"tag": "p"}])
        False
        >>> _holds_blocks(row("<td><p>Intro.</p><p>More.</p></td>"), [{"tag": "p"}])
        True
    """
    for d in row.iterdescendants():
        if isinstance(d.tag, str) and d.tag in HEADINGS:
            return True
    for cell in row:
        if not isinstance(cell.tag, str) or cell.tag not in CELL_TAGS:
            continue
        inner = [d for d in cell.iterdescendants() if isinstance(d.tag, str) and _matches(d, selectors)]
        if len(inner) > 1 or any(d.tag != "p" for d in inner):
            return True
    return False


def _drop_skipped(root) -> None:
    for el in list(root.iter(*SKIP_TAGS)):
        el.drop_tree()


def _drop_permalinks(root) -> None:
    """Drop the anchors that link a heading or an option to itself ("install¶"). Kept, the mark ends every heading
    in a source's label ("install¶ › Installing Targets¶") and sticks to options ("-S <path-to-source>¶ — Path …").

    Example:
        >>> from lxml import html
        >>> h = html.fromstring('<h2>Options<a class="headerlink" href="#options">¶</a></h2>')
        >>> _drop_permalinks(h); _text(h)
        'Options'
    """
    for a in list(root.iter("a")):
        if (a.get("href") or "").startswith("#") and _text(a) in PERMALINK_MARKS:
            a.drop_tree()


def pack(blocks: list[tuple[list[str], str]], max_chars: int, min_chars: int) -> list[PagePassage]:
    """Merge consecutive blocks under one heading path up to ``max_chars``; split a longer block on sentences.

    Example:
        >>> [p.text for p in pack([(["H"], "a" * 5), (["H"], "b" * 5), (["I"], "c" * 5)], 12, 1)]
        ['aaaaa\\nbbbbb', 'ccccc']
    """
    passages: list[PagePassage] = []
    cur: list[str] = []
    cur_path: list[str] | None = None

    def flush() -> None:
        text = "\n".join(cur).strip()
        if len(text) >= min_chars:
            passages.append(PagePassage(text, list(cur_path or [])))
        cur.clear()

    for path, text in blocks:
        for piece in _split_long(text, max_chars):
            if cur and (path != cur_path or sum(len(c) + 1 for c in cur) + len(piece) > max_chars):
                flush()
            cur_path = path
            cur.append(piece)
    if cur:
        flush()
    return passages


def _split_long(text: str, max_chars: int) -> list[str]:
    if len(text) <= max_chars:
        return [text]
    out, cur = [], ""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        while len(sentence) > max_chars:  # a "sentence" with no full stop: cut at a space
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            if cur:
                out.append(cur)
                cur = ""
            out.append(sentence[:cut])
            sentence = sentence[cut:].lstrip()
        if cur and len(cur) + 1 + len(sentence) > max_chars:
            out.append(cur)
            cur = sentence
        else:
            cur = f"{cur} {sentence}".strip()
    if cur:
        out.append(cur)
    return out


def _fallback_blocks(html: str) -> list[tuple[list[str], str]]:
    """trafilatura's main text as markdown, turned back into (heading path, paragraph) blocks."""
    import trafilatura

    md = trafilatura.extract(html, output_format="markdown", include_comments=False, include_tables=True) or ""
    path: list[tuple[int, str]] = []
    out: list[tuple[list[str], str]] = []
    for line in md.splitlines():
        line = line.strip()
        if not line:
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            level = len(m.group(1))
            path = [(lv, t) for lv, t in path if lv < level] + [(level, m.group(2).strip())]
            continue
        out.append(([t for _, t in path], WS.sub(" ", line.lstrip("-* ")).strip()))
    return out


def extract_links(root, base_url: str) -> list[str]:
    """Absolute http(s) links without fragments, in page order, each once."""
    base = root.find(".//base")
    if base is not None and base.get("href"):
        base_url = urljoin(base_url, base.get("href"))
    seen: dict[str, None] = {}
    for a in root.iter("a", "area"):
        href = (a.get("href") or "").strip()
        if not href or href.startswith(("javascript:", "mailto:", "tel:", "#")):
            continue
        url = urldefrag(urljoin(base_url, href))[0]
        if url.startswith(("http://", "https://")):
            seen.setdefault(url, None)
    return list(seen)


def extract_page(
    html: str | bytes,
    base_url: str,
    selectors: list[dict[str, str]] | None = None,
    max_chars: int = 1500,
    min_chars: int = 40,
    fallback: bool = True,
) -> PageContent:
    """Parse one page. ``base_url`` must be the URL the page was finally served from (after redirects)."""
    import lxml.html
    from lxml.etree import ParserError

    from archivesrag.scraping.config import DEFAULT_SELECTORS

    try:
        root = lxml.html.document_fromstring(html)
    except (ParserError, ValueError):
        return PageContent(title=None, via="none")
    title_el = root.find(".//title")
    title = _text(title_el) if title_el is not None else None
    links = extract_links(root, base_url)
    _drop_skipped(root)
    _drop_permalinks(root)
    body = root.find("body")
    blocks = _blocks(body if body is not None else root, selectors or DEFAULT_SELECTORS)
    via = "selectors"
    if not blocks and fallback:
        raw = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
        blocks, via = _fallback_blocks(raw), "fallback"
    passages = pack(blocks, max_chars, min_chars)
    return PageContent(title=title or None, links=links, passages=passages, via=via if passages else "none")
