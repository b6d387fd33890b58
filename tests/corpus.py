"""Real text for tests and benches: (query, passage) pairs from the Python standard library's docstrings.

The query is a docstring's summary line, the passage its body (PSF licence). Docstrings are read with ``ast``
from the stdlib's source files (nothing is imported), in sorted file order, so the same Python gives the same
pairs. Tests take the first few hundred; bench/ takes thousands.
"""

from __future__ import annotations

import ast
import sysconfig
from collections.abc import Iterator
from pathlib import Path

SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__", "lib2to3", "turtledemo", "ensurepip"}


def _docstrings() -> Iterator[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if SKIP_DIRS & set(parts) or any(part.startswith("_") for part in parts):  # private modules: internal notes
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
                doc = ast.get_docstring(node)
                if doc:
                    yield doc


def is_prose(text: str) -> bool:
    """Mostly plain words: no doctest prompts, little code punctuation."""
    tokens = text.split()
    return ">>>" not in text and sum(t.strip(".,;:'\"()").isalpha() for t in tokens) >= 0.85 * len(tokens)


def stdlib_pairs(
    n: int | None = None, min_words: int = 25, max_words: int = 180, prose: bool = False
) -> list[tuple[str, str]]:
    """Up to ``n`` (query, passage) pairs with distinct queries and passages of ``min_words``..``max_words``;
    ``prose`` keeps only passages of plain words (for prompting small LLMs)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for doc in _docstrings():
        summary, _, body = doc.partition("\n")
        summary, body = " ".join(summary.split()), " ".join(body.split())
        if len(summary.split()) < 4 or not (min_words <= len(body.split()) <= max_words):
            continue
        if body in seen or summary in seen or (prose and not is_prose(body)):
            continue
        seen.update((body, summary))
        out.append((summary, body))
        if n is not None and len(out) >= n:
            break
    return out


def stdlib_paragraphs(n: int | None = None, min_words: int = 12, max_words: int = 200) -> list[str]:
    """Up to ``n`` distinct docstring paragraphs (blank-line separated) of ``min_words``..``max_words`` words."""
    out: list[str] = []
    seen: set[str] = set()
    for doc in _docstrings():
        for para in doc.split("\n\n"):
            text = " ".join(para.split())
            if min_words <= len(text.split()) <= max_words and text not in seen:
                seen.add(text)
                out.append(text)
                if n is not None and len(out) >= n:
                    return out
    return out
