"""The JSONL contracts between stages: typed records, strict readers, crash-safe writers.

Every stage reads and writes one of three line shapes (see DESIGN.md):

* ``passages.jsonl``      -> :class:`Passage`          ``{"text", "url"?, "title"?, "source"?, "id"?, ...}``
* ``query.jsonl``         -> :class:`QueryExample`     ``{"query", "positive": [str]}``
* ``query_minedHN.jsonl`` -> :class:`TrainingExample`  ``{"query", "positive": [...], "negative": [...]}``

Readers accept the seed's keys (``positive``/``negative``) and FlagEmbedding's (``pos``/``neg``) and report the
first bad line as ``path:line: reason`` (a :class:`RecordError`). Long jobs write through :class:`JsonlAppender`,
which appends whole lines and flushes each one, so a run killed with ``kill -9`` leaves at most one torn last line;
the appender cuts that line off when it reopens the file, and :func:`completed_keys` tells the job what is done.
Whole-file outputs go through :func:`atomic_write` (temp file + rename), so readers never see half a file.

Example:
    >>> with JsonlAppender("query.jsonl") as out:
    ...     done = out.completed_keys("id")
    ...     for p in read_passages("passages.jsonl"):
    ...         if p.key not in done:
    ...             out.write({"id": p.key, "query": "...", "positive": [p.text]})
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from archivesrag.errors import UserError

log = logging.getLogger(__name__)

T = TypeVar("T")


class RecordError(UserError):
    """A bad line in a JSONL file; the message starts with ``path:line:``."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 4 MB blocks (content ids of ingested files, checks of model files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def text_hash(text: str) -> str:
    """Stable content id of a text (sha256 of its whitespace-normalised form, 16 hex chars).

    Example:
        >>> text_hash("a  b") == text_hash("a b")
        True
    """
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


@dataclass
class Passage:
    """One retrievable unit of text; ``key`` is its id, or its content hash when it has none."""

    text: str
    url: str | None = None
    title: str | None = None
    source: str | None = None
    id: str | None = None
    headings: list[str] | None = None
    page: int | None = None

    @property
    def key(self) -> str:
        return self.id or text_hash(self.text)

    def to_dict(self) -> dict[str, Any]:
        return _compact(asdict(self))


@dataclass
class QueryExample:
    """A synthetic query and the passage(s) that answer it; ``id`` is the source passage's key."""

    query: str
    positive: list[str]
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _compact(asdict(self))


@dataclass
class TrainingExample:
    """A query with positives and mined negatives; scores are kept when the miner wrote them."""

    query: str
    positive: list[str]
    negative: list[str] = field(default_factory=list)
    pos_scores: list[float] | None = None
    neg_scores: list[float] | None = None
    id: str | None = None

    def to_dict(self, keys: str = "seed") -> dict[str, Any]:
        """Serialise with the seed's keys (``positive``/``negative``) or FlagEmbedding's (``pos``/``neg``)."""
        d = _compact(asdict(self))
        if keys == "flagembedding":
            d["pos"] = d.pop("positive")
            d["neg"] = d.pop("negative", [])
        return d


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# ---------------------------------------------------------------- readers


def line_number(where: str) -> int:
    """The line of a ``where`` that :func:`iter_jsonl` yields (``"path:line"``).

    Example:
        >>> line_number("data/passages.jsonl:12")
        12
    """
    return int(where.rsplit(":", 1)[1])


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, object)`` for each non-blank line, ``where`` being ``"path:line"``.

    Raises:
        RecordError: the file is missing, or a line is not a JSON object.
    """
    p = Path(path)
    if not p.is_file():
        raise RecordError(f"{p}: no such file; check the path (it is read as JSONL, one JSON object per line)")
    # Bytes in, decoded per line: a text-mode reader decodes ahead in blocks and would blame the wrong line.
    with p.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{p}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise RecordError(f"{where}: not UTF-8 text; save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise RecordError(
                    f"{where}: not valid JSON ({err.msg} at column {err.colno}); fix or delete that line"
                ) from None
            if not isinstance(obj, dict):
                raise RecordError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            yield where, obj


def _text(obj: dict[str, Any], key: str, where: str) -> str:
    if key not in obj:
        raise RecordError(f"{where}: missing key '{key}'; every line needs a non-empty \"{key}\" string")
    v = obj[key]
    if not isinstance(v, str):
        raise RecordError(f"{where}: '{key}' must be a string, got {type(v).__name__}")
    if not v.strip():
        raise RecordError(f"{where}: '{key}' is empty; remove the line or give it text")
    return v


def _text_list(obj: dict[str, Any], keys: tuple[str, str], where: str, required: bool) -> list[str]:
    seed_key, fe_key = keys
    key = seed_key if seed_key in obj else fe_key if fe_key in obj else None
    if key is None:
        if required:
            raise RecordError(f"{where}: missing key '{seed_key}' (or '{fe_key}'); give a list of passage strings")
        return []
    v = obj[key]
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise RecordError(f"{where}: '{key}' must be a list of strings")
    v = [s for s in v if s.strip()]
    if required and not v:
        raise RecordError(f"{where}: '{key}' has no non-empty text; give at least one passage")
    return v


def _opt_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, (str, int)):
        raise RecordError(f"{where}: '{key}' must be a string, got {type(v).__name__}")
    return str(v)


def _scores(obj: dict[str, Any], key: str, where: str) -> list[float] | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(s, (int, float)) for s in v):
        raise RecordError(f"{where}: '{key}' must be a list of numbers")
    return [float(s) for s in v]


def parse_passage(obj: dict[str, Any], where: str) -> Passage:
    """Validate one passages.jsonl object (only ``text`` is required, as in the seed)."""
    headings = obj.get("headings")
    if headings is not None and not (isinstance(headings, list) and all(isinstance(h, str) for h in headings)):
        raise RecordError(f"{where}: 'headings' must be a list of strings")
    page = obj.get("page")
    if page is not None and not isinstance(page, int):
        raise RecordError(f"{where}: 'page' must be an integer")
    return Passage(
        text=_text(obj, "text", where),
        url=_opt_str(obj, "url", where),
        title=_opt_str(obj, "title", where),
        source=_opt_str(obj, "source", where),
        id=_opt_str(obj, "id", where),
        headings=headings,
        page=page,
    )


def parse_query(obj: dict[str, Any], where: str) -> QueryExample:
    """Validate one query.jsonl object."""
    return QueryExample(
        query=_text(obj, "query", where),
        positive=_text_list(obj, ("positive", "pos"), where, required=True),
        id=_opt_str(obj, "id", where),
    )


def parse_training(obj: dict[str, Any], where: str, require_negatives: bool = False) -> TrainingExample:
    """Validate one query_minedHN.jsonl object; ``require_negatives`` makes an empty negative list an error."""
    neg = _text_list(obj, ("negative", "neg"), where, required=False)
    if require_negatives and not neg:
        raise RecordError(
            f"{where}: no negatives; run mine_hn.py on this file first, "
            "or train with --train_group_size 1 (in-batch negatives only)"
        )
    return TrainingExample(
        query=_text(obj, "query", where),
        positive=_text_list(obj, ("positive", "pos"), where, required=True),
        negative=neg,
        pos_scores=_scores(obj, "pos_scores", where),
        neg_scores=_scores(obj, "neg_scores", where),
        id=_opt_str(obj, "id", where),
    )


def read_records(path: str | os.PathLike[str], parse: Callable[[dict[str, Any], str], T]) -> list[T]:
    """Read a whole JSONL file with one of the ``parse_*`` functions; an empty file is an error."""
    out = [parse(obj, where) for where, obj in iter_jsonl(path)]
    if not out:
        raise RecordError(f"{path}: the file has no records; it should hold one JSON object per line")
    return out


def read_passages(path: str | os.PathLike[str]) -> list[Passage]:
    return read_records(path, parse_passage)


def read_queries(path: str | os.PathLike[str]) -> list[QueryExample]:
    return read_records(path, parse_query)


def read_training_examples(path: str | os.PathLike[str], require_negatives: bool = False) -> list[TrainingExample]:
    return read_records(path, lambda o, w: parse_training(o, w, require_negatives))


# ---------------------------------------------------------------- writers


def _as_dict(record: Any) -> dict[str, Any]:
    return record.to_dict() if hasattr(record, "to_dict") else dict(record)


def repair_torn_tail(path: str | os.PathLike[str]) -> int:
    """Cut off a last line that a killed writer left without its newline; return the bytes removed.

    A line is only complete once its ``\\n`` is on disk, so a partial tail is never a record.
    """
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return 0
    with p.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # Walk back to the last newline in 64 KiB steps: torn lines can be long passages.
        pos = size
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            idx = f.read(step).rfind(b"\n")
            if idx >= 0:
                keep = pos + idx + 1
                break
        else:
            keep = 0
        f.truncate(keep)
    log.warning("%s: removed a torn last line (%d bytes) left by an interrupted run", p, size - keep)
    return size - keep


class JsonlAppender:
    """Append-only JSONL writer for long jobs: whole lines, flushed one by one, resumable.

    Opening repairs a torn tail (see :func:`repair_torn_tail`); ``completed_keys`` reads back what earlier runs
    wrote so the job can skip it. Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike[str], fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._f: IO[str] | None = None
        self.written = 0

    def __enter__(self) -> JsonlAppender:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._f = self.path.open("a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def completed_keys(self, key: str) -> set[str]:
        """Values of ``key`` in the lines already on disk (the resume set)."""
        return completed_keys(self.path, key)

    def write(self, record: Any) -> None:
        """Write one record (a dict or a record dataclass) as one whole line, then flush it."""
        assert self._f is not None, "use JsonlAppender as a context manager"
        self._f.write(json.dumps(_as_dict(record), ensure_ascii=False) + "\n")
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        self.written += 1


def completed_keys(path: str | os.PathLike[str], key: str) -> set[str]:
    """Return the set of ``key`` values in an output file written by :class:`JsonlAppender` (empty if none)."""
    p = Path(path)
    if not p.exists():
        return set()
    repair_torn_tail(p)
    return {str(obj[key]) for _, obj in iter_jsonl(p) if key in obj}


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Write a whole file so that readers see the old file or the new one, never half of either.

    Writes to a temp file in the same directory, fsyncs, then renames over ``path``. On error the temp file is
    removed and ``path`` is untouched.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Any]) -> int:
    """Atomically write ``records`` as a whole JSONL file; return the number of lines."""
    n = 0
    with atomic_write(path) as f:
        for r in records:
            f.write(json.dumps(_as_dict(r), ensure_ascii=False) + "\n")
            n += 1
    return n


def safe_filename(name: str) -> str:
    """A name that is safe to create in the uploads folder: no directories, no leading dot, ASCII word chars.

    Example:
        >>> safe_filename("../../etc/My Report (final).PDF")
        'My_Report_final_.pdf'
    """
    stem, suffix = os.path.splitext(os.path.basename(name.replace("\\", "/")))
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()  # Ünïcode -> Unicode
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:100] or "upload"
    return f"{stem}{suffix.lower()}"
