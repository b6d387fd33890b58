"""The persistent index: one SQLite file is the truth, a FAISS file is its cache. Nothing is pickled.

LangChain's ``FAISS.load_local`` unpickles ``index.pkl`` (a crafted file runs code when opened) and its COSINE
strategy is silently L2. Here:

* ``chunks.sqlite`` holds every chunk: text, source file, page, url, title, content hash, and its vector (float32
  bytes). Also the files seen (with their content hash) and the embedding model that built the index. SQLite
  transactions make each file's ingest atomic: a killed ingest leaves the index as it was before that file.
* ``index.faiss`` is an inner-product index over the normalised vectors (cosine; higher is better), keyed by
  chunk id, written with ``faiss.write_index`` (a plain binary format) next to a generation stamp. After an ingest
  that only added chunks, the new vectors are appended to it; after one that removed chunks, or when the file is
  damaged or disagrees with the database (a crash between the two), it is rebuilt from SQLite.

Index types (``index_type``, kept in the database): ``flat`` is exact search, one pass over every vector per
question: ~12 ms at 100k MiniLM chunks on one core here, growing linearly. ``hnsw`` is FAISS's HNSW graph (M=32,
efSearch=128): under 1 ms at 100k with recall@4 of about 0.99 against exact (see bench/rag.py), but a full rebuild
after removals takes seconds. ``auto`` (the default) is ``flat`` up to :data:`HNSW_FROM` chunks and ``hnsw`` above.

Example:
    >>> store = IndexStore.open("my-index", model_name="bundled", dim=384)
    >>> store.replace_source("a.pdf", "3f2a…", chunks, vectors)
    >>> store.search(query_vec, k=4)
    [(17, 0.82), (3, 0.77), ...]
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archivesrag.errors import UserError

log = logging.getLogger(__name__)

INDEX_TYPES = ("auto", "flat", "hnsw")
HNSW_FROM = 50_000  # chunks; below this an exact scan takes a few ms and a graph is not worth its build time
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 128

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    source TEXT PRIMARY KEY, file_hash TEXT NOT NULL, chunks INTEGER NOT NULL, added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, page INTEGER, url TEXT, title TEXT,
    text TEXT NOT NULL, chunk_hash TEXT NOT NULL UNIQUE, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
"""
# Columns added after the first release: an older index gains them (NULL for its chunks) when opened.
LATER_COLUMNS = {"line": "INTEGER", "headings": "TEXT", "ocr": "INTEGER"}
CHUNK_COLUMNS = "id, text, source, page, url, title, chunk_hash, line, headings, ocr"
LABEL_WORDS = 8  # first words of a passage that name it when nothing else does


@dataclass
class Chunk:
    """One stored piece of a document, with where it came from (for citations)."""

    text: str
    source: str
    page: int | None = None
    url: str | None = None
    title: str | None = None
    chunk_hash: str = ""
    id: int | None = None
    line: int | None = None  # line of a passages JSONL file
    headings: str | None = None  # heading path of a scraped passage, "A › B"
    ocr: bool = False  # the text was read from a page image

    @property
    def search_text(self) -> str:
        r"""What retrieval reads (embedding, BM25, the reranker): the heading path, then the text. A chunk from the
        middle of a section rarely repeats its heading, and questions are often worded like headings.

        Example:
            >>> Chunk("Deb'ee'en, after Debra and Ian.", "faq.pdf", headings="Overview › Say Debian?").search_text
            "Overview › Say Debian?\nDeb'ee'en, after Debra and Ian."
        """
        return f"{self.headings}\n{self.text}" if self.headings else self.text

    @property
    def section(self) -> str | None:
        """The innermost heading over this chunk ("How to say Debian?" of "Overview › How to say Debian?")."""
        return self.headings.rsplit(" › ", 1)[-1] if self.headings else None

    def label(self) -> str:
        """How a citation names this chunk, so a person can find it: the PDF page and its section's heading, the
        page title or heading path with its URL, or a JSONL file's line and first words (never just the file name
        of a JSONL).

        Example:
            >>> Chunk("Congress shall have power to declare war", "/d/passages.jsonl", line=12).label()
            'passages.jsonl, line 12: “Congress shall have power to declare war”'
            >>> Chunk("Deb'ee'en", "/d/faq.pdf", page=10, headings="Overview › How to say Debian?").label()
            'faq.pdf, page 10: How to say Debian?'
        """
        name = Path(self.source).name
        parts = [self.title] if self.title else []
        if self.headings and self.headings != self.title:
            parts.append(self.headings.removeprefix(f"{self.title} › ") if self.title else self.headings)
        where = " › ".join(parts)
        if self.url:
            return f"{where} ({self.url})" if where else self.url
        if self.page:
            page = f"{name}, page {self.page}" + (", OCR" if self.ocr else "")
            return f"{page}: {self.section}" if self.section else page
        if self.line:
            return f"{name}, line {self.line}: " + (where or _first_words(self.text))
        return f"{name}: {where}" if where else name


class IndexStore:
    """An index directory (see module docstring); create or open with :meth:`open`."""

    def __init__(self, path: Path, db: sqlite3.Connection, model_name: str, dim: int) -> None:
        self.path = path
        self.db = db
        self.model_name = model_name
        self.dim = dim
        self._faiss = None

    # ------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        model_name: str | None = None,
        dim: int | None = None,
        create: bool = True,
        index_type: str | None = None,
    ) -> IndexStore:
        """Open an index, creating it when ``create`` and ``model_name``/``dim`` are given.

        ``index_type`` (``auto``/``flat``/``hnsw``), when given, is stored and used from the next search on.

        Raises:
            UserError: no index there (and not creating), a damaged database, or a model that differs from the
                one that built the index.
        """
        p = Path(path)
        db_path = p / "chunks.sqlite"
        if not db_path.exists() and not (create and model_name and dim):
            raise UserError(f"{p}: no index here; build one with: python rag.py ingest --index {p} FILES...")
        p.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(chunks)")}
            for column, kind in LATER_COLUMNS.items():
                if column not in have:
                    db.execute(f"ALTER TABLE chunks ADD COLUMN {column} {kind}")
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as err:
            raise UserError(f"{db_path}: not a readable index database ({err}); rebuild the index") from None
        if not meta:
            if not (model_name and dim):
                raise UserError(f"{p}: empty index; ingest documents with an --embedding_model first")
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("model", model_name), ("dim", str(dim)), ("generation", "0"), ("removed_gen", "0")],
            )
            meta = {"model": model_name, "dim": str(dim)}
        if model_name and meta["model"] != model_name:
            raise UserError(
                f"{p} was built with embedding model '{meta['model']}', not '{model_name}'; use "
                f"--embedding_model {meta['model']} or a new --index directory"
            )
        if index_type is not None and index_type != meta.get("index_type", "auto"):
            if index_type not in INDEX_TYPES:
                raise UserError(f"--index_type {index_type}: use one of {', '.join(INDEX_TYPES)}")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('index_type', ?)", (index_type,))
            log.info("%s: index type set to %s", p, index_type)
        return cls(p, db, meta["model"], int(meta["dim"]))

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ reading

    @property
    def generation(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def sources(self) -> dict[str, str]:
        """Every ingested source with its content hash."""
        return dict(self.db.execute("SELECT source, file_hash FROM files").fetchall())

    def file_hash(self, source: str) -> str | None:
        row = self.db.execute("SELECT file_hash FROM files WHERE source=?", (source,)).fetchone()
        return row[0] if row else None

    def has_chunk(self, chunk_hash: str) -> bool:
        return self.db.execute("SELECT 1 FROM chunks WHERE chunk_hash=?", (chunk_hash,)).fetchone() is not None

    def get(self, ids: list[int]) -> list[Chunk]:
        """Chunks by id, in the order asked."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})", ids).fetchall()
        by_id = {r[0]: _chunk(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def all_texts(self) -> tuple[list[int], list[str]]:
        """Ids and :attr:`Chunk.search_text` of every chunk (for BM25)."""
        rows = self.db.execute("SELECT id, text, headings FROM chunks ORDER BY id").fetchall()
        return [r[0] for r in rows], [f"{h}\n{t}" if h else t for _, t, h in rows]

    def vectors(self, ids: list[int]) -> np.ndarray:
        return np.stack([self.faiss().reconstruct(int(i)) for i in ids]) if ids else np.zeros((0, self.dim))

    # ------------------------------------------------------------ searching

    def faiss(self):
        """The FAISS index, brought up to date with SQLite: loaded from its cache file, extended with the chunks
        added since, or rebuilt (see module docstring)."""
        gen = self.generation
        if self._faiss is not None and self._faiss_gen == gen:
            return self._faiss
        want = self.wanted_type()
        index, built_gen = (self._faiss, self._faiss_gen) if self._faiss is not None else self._load_cache()
        if index is not None and not self._can_extend(index, built_gen, want):
            index = None
        changed = False
        if index is not None:
            changed = self._append_new(index) > 0
            if index.ntotal != self.count():
                log.warning("%s disagrees with the database; rebuilding it", self.path / "index.faiss")
                index = None
        if index is None:
            index, changed = self._rebuild(want), True
        if changed:  # an unchanged cache is not rewritten (150 MB at 100k chunks); only its stamp may move on
            self._save(index)
        if changed or built_gen != gen:
            (self.path / "index.faiss.gen").write_text(f"{gen}\n")
        self._faiss, self._faiss_gen = index, gen
        return index

    @property
    def index_type(self) -> str:
        """``auto``, ``flat`` or ``hnsw`` as set at ingest (see module docstring)."""
        return self._meta("index_type", "auto")

    def wanted_type(self, count: int | None = None) -> str:
        """The concrete index kind for ``count`` chunks (default: the current count)."""
        if self.index_type != "auto":
            return self.index_type
        return "hnsw" if (self.count() if count is None else count) >= HNSW_FROM else "flat"

    def _meta(self, key: str, default: str) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def _load_cache(self):
        """(index, generation it was built at) from the cache file, or (None, -1) when missing or unreadable."""
        import faiss

        idx_path, stamp = self.path / "index.faiss", self.path / "index.faiss.gen"
        if not (idx_path.exists() and stamp.exists()):
            return None, -1
        try:
            index = faiss.read_index(str(idx_path))
            built_gen = int(stamp.read_text().strip())
        except (RuntimeError, ValueError):
            log.warning("%s is damaged; rebuilding it from the database", idx_path)
            return None, -1
        if index.d != self.dim or not isinstance(index, faiss.IndexIDMap2):
            log.warning("%s does not match the database; rebuilding it", idx_path)
            return None, -1
        self._tune(index)
        return index, built_gen

    def _can_extend(self, index, built_gen: int, want: str) -> bool:
        # Chunk ids only grow while nothing is deleted, so "everything after the cache's largest id" is exactly
        # what is missing, as long as no removal happened after the cache was built (and the kind still fits).
        removed_gen = int(self._meta("removed_gen", str(self.generation)))
        return 0 <= built_gen <= self.generation and removed_gen <= built_gen and index_kind(index) == want

    def _append_new(self, index) -> int:
        """Add the chunks stored after the index's largest id; return how many."""
        import faiss

        last = int(faiss.vector_to_array(index.id_map).max()) if index.ntotal else -1
        return self._add_rows(index, self.db.execute("SELECT id, vector FROM chunks WHERE id > ? ORDER BY id", (last,)))

    def _add_rows(self, index, cursor: sqlite3.Cursor, batch: int = 20_000) -> int:
        added = 0
        while rows := cursor.fetchmany(batch):
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
            index.add_with_ids(vecs, ids)
            added += len(rows)
        return added

    def _rebuild(self, kind: str):
        import faiss

        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        else:
            inner = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIDMap2(inner)
        t0, n = time.perf_counter(), self.count()
        self._add_rows(index, self.db.execute("SELECT id, vector FROM chunks ORDER BY id"))
        log.info("built a %s FAISS index over %d chunks in %.1f s", kind, n, time.perf_counter() - t0)
        self._tune(index)
        return index

    @staticmethod
    def _tune(index) -> None:
        inner = _inner(index)
        if hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = HNSW_EF_SEARCH

    def _save(self, index) -> None:
        """Replace the cache file atomically (the caller writes its stamp after it)."""
        import faiss

        tmp = self.path / f".index.faiss.{os.getpid()}.tmp"
        faiss.write_index(index, str(tmp))
        os.replace(tmp, self.path / "index.faiss")

    def search(self, query_vec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine score), best first."""
        index = self.faiss()
        if index.ntotal == 0:
            return []
        k = min(k, index.ntotal)
        inner = _inner(index)
        if hasattr(inner, "hnsw") and inner.hnsw.efSearch < k:
            inner.hnsw.efSearch = k  # the graph search returns at most efSearch results
        scores, ids = index.search(np.asarray(query_vec, dtype=np.float32).reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    # ------------------------------------------------------------ writing

    def replace_source(self, source: str, file_hash: str, chunks: list[Chunk], vectors: np.ndarray) -> int:
        """Atomically make ``chunks`` the whole content of ``source``; return how many chunks were new.

        A chunk whose text is already stored (same content hash, any source) is skipped.
        """
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        added = 0
        with self._transaction():
            removed = self.db.execute("DELETE FROM chunks WHERE source=?", (source,)).rowcount
            for c, v in zip(chunks, vecs, strict=True):
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO chunks(source, page, url, title, text, chunk_hash, vector, line, headings, "
                    "ocr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (source, c.page, c.url, c.title, c.text, c.chunk_hash, v.tobytes(), c.line, c.headings, int(c.ocr)),
                )
                added += cur.rowcount
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", (source, file_hash, added, time.time()))
            self._bump(removed=removed > 0)
        return added

    def remove_source(self, source: str) -> None:
        with self._transaction():
            self.db.execute("DELETE FROM chunks WHERE source=?", (source,))
            self.db.execute("DELETE FROM files WHERE source=?", (source,))
            self._bump(removed=True)

    def _bump(self, removed: bool) -> None:
        """Count a change; ``removed`` records that chunks were deleted in it (the FAISS cache must be rebuilt)."""
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
        if removed:
            self.db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('removed_gen', (SELECT value FROM meta WHERE key='generation'))"
            )

    @contextlib.contextmanager
    def _transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def flush(self) -> None:
        """Bring the FAISS cache file up to date (after an ingest)."""
        self.faiss()


def _first_words(text: str, n: int = LABEL_WORDS) -> str:
    words = text.split()
    return "“" + " ".join(words[:n]) + ("…" if len(words) > n else "") + "”"


def _chunk(row: tuple) -> Chunk:
    """A :class:`Chunk` from a row of :data:`CHUNK_COLUMNS`."""
    i, text, source, page, url, title, chunk_hash, line, headings, ocr = row
    return Chunk(text, source, page, url, title, chunk_hash, i, line, headings, bool(ocr))


def _inner(index):
    import faiss

    return faiss.downcast_index(index.index)


def index_kind(index) -> str:
    """``hnsw`` or ``flat``: what a loaded FAISS index (an ``IndexIDMap2``) searches with."""
    return "hnsw" if hasattr(_inner(index), "hnsw") else "flat"
