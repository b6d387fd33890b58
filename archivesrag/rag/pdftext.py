"""A PDF page's text layer as a reader sees it: words whole, footnote marks apart, exponents marked.

PDFium gives a page's characters in reading order, each with its font size and box. Its plain text loses what a
reader takes from the layout: a superscript footnote mark is glued to the word it follows (``.RData5in the current
directory``, so neither ``.RData`` nor ``in`` is a word any more), and an exponent reads as a digit of the number
(``x2`` for x squared, ``106`` for ten to the sixth). Both are digits set smaller than the text before them, with
their box raised above its baseline; that is what :func:`page_text` looks for, only where digits follow a character
directly, so a page costs a few calls per such digit run, not per character.

Example:
    >>> import pypdfium2
    >>> text = page_text(pypdfium2.PdfDocument("R-intro.pdf")[11].get_textpage())
    >>> "a file called .RData in the current directory" in " ".join(text.split())  # ".RData5in" in the text layer
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pypdfium2.raw as pdfium_c

SMALLER = 0.85  # a mark's font size is at most this share of the text's (footnote marks: 0.64 in LaTeX)
RAISED = 0.15  # its box bottom is at least this share of the text's font size above the text's
SAME_LINE = 0.5  # a character after the mark is on the text's line when its bottom is this close (descenders)
NEAR = 1.0  # and it starts within this many of the text's font sizes of the character before it
# where a raised digit run can be: right after a non-space, non-digit character; after a digit across a line break
# PDFium generated for the raise; or ending a number, before such a break (10^6 reads "10\r\n6" or "106\r\n")
CANDIDATE = re.compile(
    r"(?<=[^\s\d])(?:\r\n)?(?P<d1>\d{1,3})(?!\d)(?P<a1>\r\n)?"
    r"|(?<=\d)\r\n(?P<d2>\d{1,3})(?!\d)(?P<a2>\r\n)?"
    r"|(?<!\S)(?P<d3>\d{2,7})(?P<a3>\r\n)"
)
EXPONENT_BASE = re.compile(r"(?:^|[^A-Za-z])[A-Za-z]$|\d$")
HYPHEN_MARKS = ("\ufffe", "\x02", "\xad")  # a word PDFium joined across a line break ("in\ufffeformation")
HYPHEN_MARK = re.compile("[" + "".join(HYPHEN_MARKS) + "]")
BROKEN_HYPHEN = "\uffff"  # a noncharacter, as PDFium's own mark: a mark whose word does not go on after it


@dataclass(frozen=True)
class _Glyph:
    """One character's font size and box (PDF points, y up)."""

    size: float
    left: float
    bottom: float
    right: float

    @classmethod
    def at(cls, textpage: Any, index: int) -> _Glyph:
        left, bottom, right, _top = textpage.get_charbox(index)
        return cls(pdfium_c.FPDFText_GetFontSize(textpage, index), left, bottom, right)


def page_text(textpage: Any) -> str:
    """The page's text with footnote marks dropped, exponents written ``^n``, and hyphenated line breaks joined.

    Args:
        textpage: a ``pypdfium2.PdfTextPage``.

    Returns:
        The text, lines ending in ``\\n``.
    """
    text = _hyphens_not_joined(textpage, _text_by_char(textpage))
    out, end = [], 0
    for match in CANDIDATE.finditer(text):
        found = _raised_mark(textpage, text, match)
        if found is None:
            continue
        start, mark = found
        out += [text[end:start], mark]
        end = match.end()
    out.append(text[end:])
    text = "".join(out).replace("\r\n", "\n").replace("\x00", "")
    for hyphen in HYPHEN_MARKS:
        text = text.replace(hyphen, "")
    return text.replace(BROKEN_HYPHEN, "-\n")


def _hyphens_not_joined(textpage: Any, text: str) -> str:
    """``text`` with :data:`BROKEN_HYPHEN` for each hyphen mark whose next character is set in another size: the
    word goes on elsewhere (on the next page), and what PDFium joined to it is a footer or a heading.

    Why: a two-column paper's last line "beyond the scope of this pa-" was joined to its footer,
    "pahttps://cran.r-project.org/package=Rcpp Rcpp Vignette | January 11, 2022 | 1–8", so the footer was no line
    of its own for :func:`~archivesrag.rag.ingest.strip_running_lines` to drop, and the page's last sentence was
    carried to the next page with it. A word hyphenated at the foot of one column and ending atop the next keeps
    its size, and is joined as before.
    """
    out, end = [], 0
    for mark in HYPHEN_MARK.finditer(text, 1, len(text) - 1):  # PDFium is asked about the marks only
        i = mark.start()
        before, after = _Glyph.at(textpage, i - 1).size, _Glyph.at(textpage, i + 1).size
        if before > 0 and after > 0 and not SMALLER <= after / before <= 1 / SMALLER:
            out += [text[end:i], BROKEN_HYPHEN]
            end = i + 1
    return "".join(out) + text[end:]


def _text_by_char(textpage: Any) -> str:
    """The text with one string index per PDFium character, so an index in it is one for the char calls.

    ``get_text_range`` leaves out NUL characters (seen in a LaTeX maths font); then the text is read per character.
    """
    count = pdfium_c.FPDFText_CountChars(textpage)
    text = textpage.get_text_range()
    if len(text) != count:
        text = "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage, i)) for i in range(count))
    return text


def _raised_mark(textpage: Any, text: str, match: re.Match[str]) -> tuple[int, str] | None:
    """Where a candidate's raised digits start (breaks before them included) and what they become: ``""``, ``" "``
    or ``"\\n"`` for a footnote mark, ``"^n"`` for an exponent; None when they are text like any other."""
    if match["d3"] is not None:  # a number's last digits: try each split, its first digit against the one before
        run = match.start("d3")
        for start in range(run + 1, match.end("d3")):
            if _is_raised(textpage, start - 1, start):
                return start, _render(textpage, text, start, start, match.end("d3"), match["a3"])
        return None
    for d, after in (("d1", "a1"), ("d2", "a2")):
        if match[d] is not None and _is_raised(textpage, match.start() - 1, match.start(d)):
            return match.start(), _render(textpage, text, match.start(), match.start(d), match.end(d), match[after])
    return None


def _is_raised(textpage: Any, ref_index: int, index: int) -> bool:
    """Whether the character at ``index`` is set smaller than the one at ``ref_index``, raised above it, beside it."""
    ref, mark = _Glyph.at(textpage, ref_index), _Glyph.at(textpage, index)
    return (
        ref.size > 0
        and mark.size <= SMALLER * ref.size
        and mark.bottom >= ref.bottom + RAISED * ref.size
        and abs(mark.left - ref.right) <= NEAR * ref.size
    )


def _render(textpage: Any, text: str, start: int, digits_start: int, digits_end: int, after: str | None) -> str:
    """A raised run after a lone letter or a number is an exponent (``x^2``, ``10^6``); after a word or
    punctuation it is a footnote mark, dropped. Either way followed by what the words around it need."""
    gap = _gap(textpage, text, start - 1, digits_end + len(after)) if after else ""
    if EXPONENT_BASE.search(text[max(0, start - 3) : start]):
        return "^" + text[digits_start:digits_end] + gap
    return gap


def _gap(textpage: Any, text: str, ref_index: int, end: int) -> str:
    """What stands for the line break PDFium put after a raised run: a line end where the text goes on below, a
    space where it goes on along the same line (PDFium broke it for the raise alone), nothing before punctuation."""
    if end == len(text):
        return ""
    ref, nxt = _Glyph.at(textpage, ref_index), _Glyph.at(textpage, end)
    if abs(nxt.bottom - ref.bottom) > SAME_LINE * ref.size or nxt.left < ref.right:
        return "\n"
    return "" if text[end] in ",.;:!?)]" or text[end].isspace() else " "
