"""The persistent index: one SQLite file is the truth, a FAISS file is its cache. Nothing is pickled.

LangChain's ``FAISS.load_local`` unpickles ``index.pkl`` (a crafted file runs code when opened) and its COSINE
strategy is silently L2. Here:

* ``chunks.sqlite`` holds every chunk: text, source file, page, url, title, content hash, and its vector (float32
  bytes). Also the files seen (with their content hash) and the embedding model that built the index. SQLite
  transactions make each file's ingest atomic: a killed ingest leaves the index as it was before that file.
* ``index.faiss`` is an exact inner-product index over the normalised vectors (cosine; higher is better), keyed by
  chunk id, written with ``faiss.write_index`` (a plain binary format) next to a generation stamp. When the stamp
  does not match the database (a crash between the two) or the file is damaged, it is rebuilt from SQLite.

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

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    source TEXT PRIMARY KEY, file_hash TEXT NOT NULL, chunks INTEGER NOT NULL, added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, page INTEGER, url TEXT, title TEXT,
    text TEXT NOT NULL, chunk_hash TEXT NOT NULL UNIQUE, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
"""


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

    def label(self) -> str:
        """How a citation names this chunk: the URL, or the file name and page."""
        if self.url:
            return self.url
        name = Path(self.source).name
        return f"{name}, page {self.page}" if self.page else name


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
        cls, path: str | os.PathLike[str], model_name: str | None = None, dim: int | None = None, create: bool = True
    ) -> IndexStore:
        """Open an index, creating it when ``create`` and ``model_name``/``dim`` are given.

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
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as err:
            raise UserError(f"{db_path}: not a readable index database ({err}); rebuild the index") from None
        if not meta:
            if not (model_name and dim):
                raise UserError(f"{p}: empty index; ingest documents with an --embedding_model first")
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)", [("model", model_name), ("dim", str(dim)), ("generation", "0")]
            )
            meta = {"model": model_name, "dim": str(dim)}
        if model_name and meta["model"] != model_name:
            raise UserError(
                f"{p} was built with embedding model '{meta['model']}', not '{model_name}'; use "
                f"--embedding_model {meta['model']} or a new --index directory"
            )
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
        rows = self.db.execute(
            f"SELECT id, text, source, page, url, title, chunk_hash FROM chunks WHERE id IN ({marks})", ids
        ).fetchall()
        by_id = {
            r[0]: Chunk(text=r[1], source=r[2], page=r[3], url=r[4], title=r[5], chunk_hash=r[6], id=r[0]) for r in rows
        }
        return [by_id[i] for i in ids if i in by_id]

    def all_texts(self) -> tuple[list[int], list[str]]:
        """Ids and texts of every chunk (for BM25)."""
        rows = self.db.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def vectors(self, ids: list[int]) -> np.ndarray:
        return np.stack([self.faiss().reconstruct(int(i)) for i in ids]) if ids else np.zeros((0, self.dim))

    # ------------------------------------------------------------ searching

    def faiss(self):
        """The FAISS index, loaded from its cache file when fresh, else rebuilt from SQLite."""
        if self._faiss is not None and self._faiss_gen == self.generation:
            return self._faiss
        import faiss

        gen = self.generation
        idx_path, stamp = self.path / "index.faiss", self.path / "index.faiss.gen"
        index = None
        if idx_path.exists() and stamp.exists() and stamp.read_text().strip() == str(gen):
            try:
                index = faiss.read_index(str(idx_path))
                if index.ntotal != self.count() or index.d != self.dim:
                    index = None
            except RuntimeError:
                index = None
            if index is None:
                log.warning("%s is stale or damaged; rebuilding it from the database", idx_path)
        if index is None:
            index = self._rebuild()
            self._save(index, gen)
        self._faiss, self._faiss_gen = index, gen
        return index

    def _rebuild(self):
        import faiss

        index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        rows = self.db.execute("SELECT id, vector FROM chunks ORDER BY id").fetchall()
        if rows:
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.dim)
            index.add_with_ids(vecs, ids)
        return index

    def _save(self, index, gen: int) -> None:
        import faiss

        tmp = self.path / f".index.faiss.{os.getpid()}.tmp"
        faiss.write_index(index, str(tmp))
        os.replace(tmp, self.path / "index.faiss")
        (self.path / "index.faiss.gen").write_text(f"{gen}\n")

    def search(self, query_vec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine score), best first."""
        index = self.faiss()
        if index.ntotal == 0:
            return []
        scores, ids = index.search(np.asarray(query_vec, dtype=np.float32).reshape(1, -1), min(k, index.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    # ------------------------------------------------------------ writing

    def replace_source(self, source: str, file_hash: str, chunks: list[Chunk], vectors: np.ndarray) -> int:
        """Atomically make ``chunks`` the whole content of ``source``; return how many chunks were new.

        A chunk whose text is already stored (same content hash, any source) is skipped.
        """
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        added = 0
        with self._transaction():
            self.db.execute("DELETE FROM chunks WHERE source=?", (source,))
            for c, v in zip(chunks, vecs, strict=True):
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO chunks(source, page, url, title, text, chunk_hash, vector) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (source, c.page, c.url, c.title, c.text, c.chunk_hash, v.tobytes()),
                )
                added += cur.rowcount
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", (source, file_hash, added, time.time()))
            self._bump()
        return added

    def remove_source(self, source: str) -> None:
        with self._transaction():
            self.db.execute("DELETE FROM chunks WHERE source=?", (source,))
            self.db.execute("DELETE FROM files WHERE source=?", (source,))
            self._bump()

    def _bump(self) -> None:
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")

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
