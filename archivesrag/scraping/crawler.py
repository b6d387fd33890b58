"""An asynchronous, polite, resumable crawler that writes passages JSONL.

Fetching is curl_cffi's ``AsyncSession`` (optionally impersonating a browser's TLS fingerprint, which some
institutional sites require); parsing runs in worker processes (:mod:`archivesrag.htmltext`) so the
event loop only does I/O and both cores parse. What a user of Scrapy expects is here: robots.txt (with its
Crawl-delay and Sitemap lines) obeyed by default, a per-host delay and a concurrency cap, retries with backoff on
429/5xx/timeouts (Retry-After honoured), sitemap.xml seeding, URL canonicalisation (courlan: fragments, default
ports, tracking parameters, query order; and trailing slashes), content-hash de-duplication, non-HTML skipped
(PDFs optionally saved for ``rag.py ingest``), and redirects off the allowed domains dropped.

State lives next to the output (:mod:`archivesrag.scraping.state`): kill the crawl at any moment and rerun the same
command to continue, with no duplicated and no lost passages.

Example:
    >>> stats = crawl(load_config("config/interpares.json"))
    >>> print(stats.summary())
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections import Counter
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

from archivesrag.htmltext import PageContent, extract_page
from archivesrag.records import Passage, safe_filename, text_hash
from archivesrag.scraping.config import ScrapeConfig
from archivesrag.scraping.state import CrawlState
from archivesrag.workers import spawn_pool

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 429, 500, 502, 503, 504, 522, 524}
MAX_SITEMAP_URLS = 50_000


def canonical_url(url: str) -> str:
    """One spelling per page: no fragment, lower-case host, no default port, no tracking parameters, sorted
    query, no trailing slash (except the root).

    Example:
        >>> canonical_url("HTTP://Example.org:80/docs/?utm_source=x&b=2&a=1#intro")
        'http://example.org/docs?a=1&b=2'
    """
    import courlan

    url = urldefrag(url.strip())[0]
    try:
        url = courlan.normalize_url(url, trailing_slash=False)
    except ValueError:
        return url
    parts = urlsplit(url)
    if len(parts.path) > 1 and parts.path.endswith("/"):  # courlan keeps it when there is a query
        url = urlunsplit(parts._replace(path=parts.path.rstrip("/")))
    return url


@dataclass
class CrawlStats:
    """Counts for the final summary line (this run plus what earlier runs of the same crawl did)."""

    fetched: int = 0
    pages_with_text: int = 0
    via_fallback: int = 0
    passages: int = 0
    retries: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    queued_left: int = 0

    def summary(self) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        return (
            f"{self.fetched} pages fetched, {self.pages_with_text} with text ({self.via_fallback} via the "
            f"main-text fallback), {self.passages} passages written; skipped: {skipped}; {self.retries} retries; "
            f"{self.queued_left} URLs left in the queue"
        )


class Crawler:
    """One crawl of one config; :meth:`run` is the whole job."""

    def __init__(self, cfg: ScrapeConfig, show_progress: bool = True, parse_workers: int | None = None) -> None:
        self.cfg = cfg
        self.output = Path(cfg.output)
        self.state = CrawlState(self.output)
        self.show_progress = show_progress
        workers = parse_workers if parse_workers is not None else min(4, os.cpu_count() or 1)
        # Spawned workers that die with the crawler, even by kill -9 (see archivesrag.workers).
        self.executor: Executor = spawn_pool(workers) if workers > 1 else ThreadPoolExecutor(max_workers=1)
        self.stats = CrawlStats()
        self.robots: dict[str, RobotFileParser | None] = {}
        self.robots_lock = asyncio.Lock()
        self.host_next: dict[str, float] = {}
        self.host_locks: dict[str, asyncio.Lock] = {}
        self.known: set[str] = set()
        self.claimed = 0
        self.errors = 0
        self.queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self.out_file = None
        self.bar = None

    # ------------------------------------------------------------ setup

    async def _seed(self, session) -> None:
        """Resume the saved frontier, or start from start_urls (+ sitemap URLs)."""
        self.state.recover()
        self.known = self.state.known_urls()
        if not self.known:
            seeds: dict[str, int] = {canonical_url(u): 0 for u in self.cfg.start_urls}
            if self.cfg.sitemap:
                for u in await self._sitemap_urls(session):
                    if self.cfg.allows(u):
                        seeds.setdefault(u, 1)
            self.state.add(list(seeds.items()))
            self.known = set(seeds)
        for url, depth in self.state.pending():
            self.queue.put_nowait((url, depth))
        settled = sum(self.state.count(s) for s in ("done", "skipped", "failed"))
        self.claimed = settled
        self.stats.fetched = settled
        self.stats.pages_with_text = self.state.count("done")
        self.stats.skipped.update(self.state.reasons())
        if settled:
            log.info("resuming: %d pages already settled, %d queued", settled, self.queue.qsize())

    async def _sitemap_urls(self, session) -> list[str]:
        """Page URLs from the start hosts' sitemaps (robots.txt Sitemap: lines, else /sitemap.xml)."""
        from lxml import etree

        todo: list[str] = []
        for start in self.cfg.start_urls:
            rp = await self._robots_for(session, start) if self.cfg.robots else None
            listed = (rp.site_maps() if rp else None) or []
            parts = urlsplit(start)
            todo += listed or [f"{parts.scheme}://{parts.netloc}/sitemap.xml"]
        urls: list[str] = []
        seen_maps: set[str] = set()
        while todo and len(seen_maps) < 20 and len(urls) < MAX_SITEMAP_URLS:
            sm = todo.pop(0)
            if sm in seen_maps:
                continue
            seen_maps.add(sm)
            resp = await self._fetch(session, sm)
            if resp is None or resp.status_code != 200:
                continue
            try:
                root = etree.fromstring(resp.content, parser=etree.XMLParser(resolve_entities=False, no_network=True))
            except etree.XMLSyntaxError:
                log.info("%s: not a sitemap (invalid XML); ignored", sm)
                continue
            locs = [el.text.strip() for el in root.iter("{*}loc") if el.text]
            if etree.QName(root).localname == "sitemapindex":
                todo += locs
            else:
                urls += [canonical_url(u) for u in locs]
        if urls:
            log.info("sitemap: %d URLs seeded", len(urls))
        return urls

    # ------------------------------------------------------------ politeness

    async def _robots_for(self, session, url: str) -> RobotFileParser | None:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        async with self.robots_lock:
            if key not in self.robots:
                rp = RobotFileParser(key + "/robots.txt")
                resp = await self._fetch(session, key + "/robots.txt", polite=False)
                if resp is None or resp.status_code >= 500:
                    rp.parse([])  # unreachable robots.txt: allowed, as Scrapy and Google do
                elif resp.status_code in (401, 403):
                    rp.disallow_all = True
                elif resp.status_code >= 400:
                    rp.parse([])
                else:
                    rp.parse(resp.text.splitlines())
                self.robots[key] = rp
            return self.robots[key]

    async def _allowed_by_robots(self, session, url: str) -> bool:
        if not self.cfg.robots:
            return True
        rp = await self._robots_for(session, url)
        return rp is None or rp.can_fetch(self._robots_agent, url)

    @property
    def _robots_agent(self) -> str:
        return self.cfg.user_agent.split("/")[0].split()[0] or "*"

    def _host_delay(self, host_key: str) -> float:
        rp = self.robots.get(host_key)
        robots_delay = (rp.crawl_delay(self._robots_agent) if rp else None) or 0
        return max(self.cfg.delay, float(robots_delay))

    async def _wait_turn(self, url: str) -> None:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        delay = self._host_delay(key)
        if delay <= 0:
            return
        lock = self.host_locks.setdefault(key, asyncio.Lock())
        async with lock:
            wait = self.host_next.get(key, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.host_next[key] = time.monotonic() + delay

    # ------------------------------------------------------------ fetching

    async def _fetch(self, session, url: str, polite: bool = True):
        """GET with retries and backoff; returns the last response, or None when the network never answered."""
        from curl_cffi.requests.exceptions import RequestException

        for attempt in range(self.cfg.retries + 1):
            if polite:
                await self._wait_turn(url)
            try:
                resp = await session.get(url, timeout=self.cfg.timeout, allow_redirects=False)
            except RequestException as err:
                if attempt == self.cfg.retries:
                    log.info("%s: giving up after %d tries (%s)", url, attempt + 1, type(err).__name__)
                    return None
                await self._backoff(attempt, None)
                continue
            if resp.status_code in RETRY_STATUS and attempt < self.cfg.retries:
                await self._backoff(attempt, resp.headers.get("retry-after"))
                continue
            return resp
        return None

    async def _backoff(self, attempt: int, retry_after: str | None) -> None:
        self.stats.retries += 1
        delay = self.cfg.backoff * (2**attempt) * (0.5 + random.random())
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), 120.0))
        await asyncio.sleep(delay)

    # ------------------------------------------------------------ one page

    async def _process(self, session, url: str, depth: int) -> None:
        if not await self._allowed_by_robots(session, url):
            return self._settle(url, "skipped", "robots_disallowed")
        resp, final, problem = await self._follow(session, url)
        if problem:
            return self._settle(url, "failed" if problem == "network_error" else "skipped", problem)
        if final != url:
            if final in self.known:
                return self._settle(url, "skipped", "duplicate_url")
            self.known.add(final)
        if resp.status_code >= 400:
            return self._settle(url, "failed" if resp.status_code >= 500 else "skipped", f"http_{resp.status_code}")
        ctype = (resp.headers.get("content-type") or "").lower()
        if "html" not in ctype:
            if "pdf" in ctype and self.cfg.pdf_dir:
                self._save_pdf(final, resp.content)
                return self._settle(url, "skipped", "pdf_saved")
            return self._settle(url, "skipped", "non_html")
        loop = asyncio.get_running_loop()
        page: PageContent = await loop.run_in_executor(
            self.executor,
            extract_page,
            resp.content,
            str(resp.url),
            self.cfg.search_contents,
            self.cfg.max_passage_chars,
            self.cfg.min_passage_chars,
            self.cfg.fallback,
        )
        links = self._new_links(page.links, depth)
        if not page.passages:
            return self._settle(url, "skipped", "no_text", links)
        digest = text_hash("\n\n".join(p.text for p in page.passages))
        owner = self.state.has_hash(digest)
        if owner and owner != url:
            return self._settle(url, "skipped", "duplicate_content", links)
        records = [
            Passage(text=p.text, url=final, title=page.title, id=f"{final}#{i}", headings=p.headings or None)
            for i, p in enumerate(page.passages)
        ]
        self._write(url, records, links, digest)
        self.stats.pages_with_text += 1
        self.stats.via_fallback += page.via == "fallback"
        self.stats.passages += len(records)

    async def _follow(self, session, url: str) -> tuple[object, str, str | None]:
        """Fetch ``url`` following redirects hop by hop, so a hop off the allowed domains (or into a filtered or
        robots-disallowed URL) is dropped before it is requested. Returns (response, final canonical URL, problem).
        """
        current = url  # what we request: the server's own spelling after a redirect (e.g. /docs -> /docs/)
        for _ in range(10):
            resp = await self._fetch(session, current)
            if resp is None:
                return None, url, "network_error"
            location = resp.headers.get("location")
            if resp.status_code not in (301, 302, 303, 307, 308) or not location:
                return resp, canonical_url(current), None
            target = urljoin(str(resp.url), location)
            nxt = canonical_url(target)
            if not self.cfg.in_domains(nxt):
                return resp, nxt, "offsite_redirect"
            if not self.cfg.allows(nxt):
                return resp, nxt, "filtered_redirect"
            if not await self._allowed_by_robots(session, nxt):
                return resp, nxt, "robots_disallowed"
            current = target
        return None, current, "too_many_redirects"

    def _new_links(self, links: list[str], depth: int) -> list[tuple[str, int]]:
        if depth + 1 > self.cfg.max_depth:
            return []
        out = []
        for link in links:
            canon = canonical_url(link)
            if canon not in self.known and self.cfg.allows(canon):
                self.known.add(canon)
                out.append((canon, depth + 1))
                self.queue.put_nowait((canon, depth + 1))
        return out

    def _write(self, url: str, records: list[Passage], links: list[tuple[str, int]], digest: str) -> None:
        assert self.out_file is not None
        offset = self.out_file.seek(0, os.SEEK_END)
        self.state.begin_write(url, len(records), offset, links, digest)
        data = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        self.out_file.write(data)
        self.out_file.flush()
        self.state.finish(url, "done")
        self._tick()

    def _settle(self, url: str, status: str, reason: str, links: list[tuple[str, int]] | None = None) -> None:
        self.state.finish(url, status, reason, links)
        self.stats.skipped[reason] += 1
        log.debug("%s: %s (%s)", url, status, reason)
        self._tick(error=status == "failed")

    def _save_pdf(self, url: str, content: bytes) -> None:
        folder = Path(self.cfg.pdf_dir or ".")
        folder.mkdir(parents=True, exist_ok=True)
        name = safe_filename(urlsplit(url).path.rsplit("/", 1)[-1] or "document.pdf")
        if not name.endswith(".pdf"):
            name += ".pdf"
        (folder / name).write_bytes(content)

    def _tick(self, error: bool = False) -> None:
        self.stats.fetched += 1
        self.errors += error
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(
                queued=self.queue.qsize(), passages=self.stats.passages, errors=self.errors, refresh=False
            )

    # ------------------------------------------------------------ the run

    async def _worker(self, session) -> None:
        while True:
            url, depth = await self.queue.get()
            try:
                if self.claimed >= self.cfg.max_pages:
                    continue  # stays queued in the state for a later run with a higher max_pages
                self.claimed += 1
                try:
                    await self._process(session, url, depth)
                except Exception as err:  # one bad page must not end the crawl
                    log.warning("%s: %s: %s", url, type(err).__name__, err)
                    self._settle(url, "failed", f"error_{type(err).__name__}")
            finally:
                self.queue.task_done()

    async def run(self) -> CrawlStats:
        from curl_cffi.requests import AsyncSession
        from tqdm import tqdm

        headers = {"User-Agent": self.cfg.user_agent} if not self.cfg.impersonate else {}
        async with AsyncSession(
            max_clients=self.cfg.concurrency, impersonate=self.cfg.impersonate, headers=headers
        ) as session:
            await self._seed(session)
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.out_file = self.output.open("ab")
            self.bar = tqdm(
                total=self.cfg.max_pages,
                initial=min(self.claimed, self.cfg.max_pages),
                desc="crawl",
                unit="page",
                disable=not self.show_progress,
            )
            workers = [asyncio.create_task(self._worker(session)) for _ in range(self.cfg.concurrency)]
            try:
                await self.queue.join()
            finally:
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                self.bar.close()
                self.out_file.close()
        self.stats.queued_left = self.state.count("queued")
        return self.stats

    def close(self) -> None:
        self.executor.shutdown(cancel_futures=True)
        self.state.close()


def crawl(cfg: ScrapeConfig, show_progress: bool = True, parse_workers: int | None = None) -> CrawlStats:
    """Run (or resume) the crawl described by ``cfg``; logs and returns the summary counts."""
    crawler = Crawler(cfg, show_progress=show_progress, parse_workers=parse_workers)
    try:
        stats = asyncio.run(crawler.run())
    finally:
        crawler.close()
    log.info("crawl %s -> %s: %s", cfg.name, cfg.output, stats.summary())
    return stats
