"""Crawl configuration: what init_config.py writes and scrape.py reads, validated on load.

A config is a JSON object; every key is optional except ``start_urls``. An unknown key (a typo), a bad regex or a
bad URL is a one-line error naming the key, so a long crawl never starts on a config that silently does less.

Example:
    >>> cfg = load_config("config/interpares.json")
    >>> cfg.allows("https://interparestrustai.org/about")
    True
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from archivesrag.errors import UserError

# The seed's "popular elements" (h1, h2, p, li) and those of reference documentation: a definition list's term and
# its description (man pages, DocBook, Sphinx option lists: "--depth <depth>" is a <dt>, its text a <dd>) and code
# blocks (<pre>). Without them the Git manual's pages lost every option name (bench/answers.py, git set). And table
# rows (<tr>, one block each, cells apart): the Apache manual gives every directive's default in a table, and without
# them the LLM made defaults up (bench/answers.py, apache set: 8 of 24 answers' facts were in tables).
DEFAULT_SELECTORS: list[dict[str, str]] = [
    {"tag": "h1"},
    {"tag": "h2"},
    {"tag": "p"},
    {"tag": "li"},
    {"tag": "dt"},
    {"tag": "dd"},
    {"tag": "pre"},
    {"tag": "tr"},
]
SELECTOR_KEYS = {"tag", "class", "style"}


@dataclass
class ScrapeConfig:
    """One site's crawl settings (see README, "Scraping", for each key)."""

    start_urls: list[str]
    name: str = "site"
    allowed_domains: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    avoid_urls: list[str] = field(default_factory=list)
    search_contents: list[dict[str, str]] = field(default_factory=lambda: [dict(s) for s in DEFAULT_SELECTORS])
    max_pages: int = 1000
    max_depth: int = 10
    concurrency: int = 8
    delay: float = 0.0
    user_agent: str = "ArchivesRAG/0.1 (research crawler; +https://github.com/archivesrag/archivesrag)"
    impersonate: str | None = None
    robots: bool = True
    sitemap: bool = True
    fallback: bool = True
    max_passage_chars: int = 1500
    min_passage_chars: int = 40
    pdf_dir: str | None = None
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0
    output: str = "data/site.jsonl"

    def __post_init__(self) -> None:
        if not self.allowed_domains:
            self.allowed_domains = sorted({host_of(u) for u in self.start_urls})
        self._include = [re.compile(p) for p in self.include]
        self._exclude = [re.compile(p) for p in self.exclude]

    def in_domains(self, url: str) -> bool:
        """The URL's host is an allowed domain or a subdomain of one."""
        host = host_of(url)
        return any(host == d or host.endswith("." + d) for d in self.allowed_domains)

    def allows(self, url: str) -> bool:
        """In an allowed domain (or a subdomain of one), matching ``include`` (if any), not ``exclude``/avoided."""
        if urlsplit(url).scheme not in ("http", "https") or not self.in_domains(url):
            return False
        if any(url.startswith(a) for a in self.avoid_urls):
            return False
        if self._include and not any(p.search(url) for p in self._include):
            return False
        return not any(p.search(url) for p in self._exclude)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _check_url(key: str, url: Any) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"'{key}': {url!r} is not an http(s) URL")


def validate(raw: Any, where: str) -> ScrapeConfig:
    """Check a parsed config object and build a :class:`ScrapeConfig`; errors name ``where`` and the key."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a config must be a JSON object")
    known = {f.name: f for f in fields(ScrapeConfig)}
    for key in raw:
        if key not in known:
            raise UserError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(known))})")
    if not raw.get("start_urls"):
        raise UserError(f"{where}: 'start_urls' is required (a list of URLs to start from)")
    try:
        for key in ("start_urls", "allowed_domains", "include", "exclude", "avoid_urls", "search_contents"):
            if key in raw and not isinstance(raw[key], list):
                raise UserError(f"'{key}' must be a list")
        for url in raw["start_urls"]:
            _check_url("start_urls", url)
        for url in raw.get("avoid_urls", []):
            _check_url("avoid_urls", url)
        for key in ("include", "exclude"):
            for pattern in raw.get(key, []):
                try:
                    re.compile(pattern)
                except (re.error, TypeError) as err:
                    raise UserError(f"'{key}': bad regex {pattern!r} ({err})") from None
        for sel in raw.get("search_contents", []):
            if not isinstance(sel, dict) or not sel or set(sel) - SELECTOR_KEYS:
                raise UserError(f"'search_contents': {sel!r} must be an object with keys among tag, class, style")
        for key in ("max_pages", "max_depth", "concurrency", "retries", "max_passage_chars", "min_passage_chars"):
            if key in raw and (not isinstance(raw[key], int) or isinstance(raw[key], bool) or raw[key] < 0):
                raise UserError(f"'{key}' must be a non-negative integer")
        if raw.get("concurrency") == 0:
            raise UserError("'concurrency' must be at least 1")
        for key in ("delay", "timeout", "backoff"):
            if key in raw and (not isinstance(raw[key], (int, float)) or raw[key] < 0):
                raise UserError(f"'{key}' must be a non-negative number of seconds")
    except UserError as err:
        raise UserError(f"{where}: {err}") from None
    return ScrapeConfig(**raw)


def load_config(path: str | Path) -> ScrapeConfig:
    """Read and validate a config file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such config file; create one with: python init_config.py --name NAME --start_url URL")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{p}:{err.lineno}: not valid JSON ({err.msg})") from None
    return validate(raw, str(p))
