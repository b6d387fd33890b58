"""The crawl's memory, next to its output: frontier, seen URLs, content hashes, and where each page's lines start.

``<output>.crawl.sqlite`` holds one row per URL (queued / writing / done / skipped / failed) and the content hashes
already written. A page is committed in three steps: mark it ``writing`` with the output file's current size,
append its passages (one write, flushed), then mark it ``done`` together with the links it found. After a
``kill -9`` anywhere, :meth:`CrawlState.recover` looks at the one page that may be ``writing``: if all its lines
reached the file it is done, otherwise the file is cut back to where that page started and the page is queued
again. So a rerun neither duplicates nor loses a passage.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (
    url TEXT PRIMARY KEY,
    depth INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    reason TEXT,
    passages INTEGER,
    offset INTEGER,
    seq INTEGER
);
CREATE INDEX IF NOT EXISTS urls_status ON urls(status);
CREATE TABLE IF NOT EXISTS hashes (hash TEXT PRIMARY KEY, url TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


class CrawlState:
    """SQLite-backed crawl state for one output file."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = output.with_name(output.name + ".crawl.sqlite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._seq = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM urls").fetchone()[0]

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ resume

    def recover(self) -> int:
        """Settle a page interrupted mid-write (see module docstring); returns bytes cut from the output."""
        row = self.db.execute("SELECT url, passages, offset FROM urls WHERE status = 'writing'").fetchone()
        size = self.output.stat().st_size if self.output.exists() else 0
        if row is None:
            if size and not self.output.read_bytes().endswith(b"\n"):
                # A line with no newline can only be the tail of a page whose 'writing' mark is gone: never a record.
                from archivesrag.records import repair_torn_tail

                return repair_torn_tail(self.output)
            return 0
        url, expected, offset = row
        with self.output.open("rb") as f:
            f.seek(offset)
            tail = f.read()
        complete = tail.count(b"\n") == expected and (not tail or tail.endswith(b"\n"))
        if complete:
            self.db.execute("UPDATE urls SET status = 'done' WHERE url = ?", (url,))
            return 0
        with self.output.open("rb+") as f:
            f.truncate(offset)
        self.db.execute("UPDATE urls SET status = 'queued' WHERE url = ?", (url,))
        log.warning(
            "%s: cut %d bytes of an interrupted page (%s); it will be fetched again", self.output, size - offset, url
        )
        return size - offset

    def pending(self) -> list[tuple[str, int]]:
        """Queued URLs in discovery order (the frontier to resume)."""
        return self.db.execute("SELECT url, depth FROM urls WHERE status = 'queued' ORDER BY seq").fetchall()

    def known_urls(self) -> set[str]:
        return {u for (u,) in self.db.execute("SELECT url FROM urls")}

    def count(self, status: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM urls WHERE status = ?", (status,)).fetchone()[0]

    def reasons(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT reason, COUNT(*) FROM urls WHERE status IN ('skipped', 'failed') GROUP BY reason"
        ).fetchall()
        return {r or "unknown": n for r, n in rows}

    def has_hash(self, digest: str) -> str | None:
        row = self.db.execute("SELECT url FROM hashes WHERE hash = ?", (digest,)).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------ updates

    def add(self, urls: list[tuple[str, int]]) -> None:
        """Queue new URLs (ones already known are ignored)."""
        rows = []
        for url, depth in urls:
            self._seq += 1
            rows.append((url, depth, self._seq))
        self.db.executemany("INSERT OR IGNORE INTO urls(url, depth, seq) VALUES (?, ?, ?)", rows)

    def begin_write(self, url: str, passages: int, offset: int, links: list[tuple[str, int]], digest: str) -> None:
        """Step 1 of a page with passages: remember where its lines start, queue its links, claim its hash."""
        with self._transaction():
            self.db.execute(
                "UPDATE urls SET status = 'writing', passages = ?, offset = ? WHERE url = ?", (passages, offset, url)
            )
            self.db.execute("INSERT OR IGNORE INTO hashes(hash, url) VALUES (?, ?)", (digest, url))
            self.add(links)

    def finish(
        self, url: str, status: str, reason: str | None = None, links: list[tuple[str, int]] | None = None
    ) -> None:
        """Mark a page settled (and queue its links when it had no passages to write)."""
        with self._transaction():
            self.db.execute("UPDATE urls SET status = ?, reason = ? WHERE url = ?", (status, reason, url))
            if links:
                self.add(links)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
