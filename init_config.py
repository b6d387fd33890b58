"""python init_config.py --name interpares --start_url https://interparestrustai.org/ [--include REGEX ...]

Write config/<name>.json for scrape.py. Without flags on a terminal it asks for the essentials; every key can be
edited in the JSON afterwards (README, "Scraping", lists them). The result is validated as scrape.py will read it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from archivesrag.errors import UserError, run_cli
from archivesrag.records import atomic_write
from archivesrag.scraping.config import DEFAULT_SELECTORS, validate


def parse_selector(text: str) -> dict[str, str]:
    """``p``, ``div.content``, ``div[style=width:80%]`` or ``.article`` -> a search_contents entry."""
    sel: dict[str, str] = {}
    if "[style=" in text and text.endswith("]"):
        text, style = text[:-1].split("[style=", 1)
        sel["style"] = style
    tag, _, cls = text.partition(".")
    if tag:
        sel["tag"] = tag
    if cls:
        sel["class"] = cls
    if not sel:
        raise UserError(f"--select {text!r}: give a tag, .class or tag.class")
    return sel


def ask(prompt: str, default: str = "") -> str:
    answer = input(f"{prompt}{f' [{default}]' if default else ''}: ").strip()
    return answer or default


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", help="config name: writes config/NAME.json and data/NAME.jsonl")
    ap.add_argument("--start_url", action="append", default=[], help="where to start (repeatable)")
    ap.add_argument("--allowed_domain", action="append", default=[], help="default: the start URLs' hosts")
    ap.add_argument("--include", action="append", default=[], help="only follow URLs matching this regex")
    ap.add_argument("--exclude", action="append", default=[], help="never follow URLs matching this regex")
    ap.add_argument("--avoid_url", action="append", default=[], help="never follow URLs starting with this")
    defaults = ", ".join(s["tag"] for s in DEFAULT_SELECTORS)
    ap.add_argument("--select", action="append", default=[], help="content selector: p, div.content, .article "
                    f"(default: {defaults})")
    ap.add_argument("--max_pages", type=int, default=1000)
    ap.add_argument("--max_depth", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds between requests to one host")
    ap.add_argument("--impersonate", help="curl_cffi browser fingerprint, e.g. chrome (for sites that block bots)")
    ap.add_argument("--no_robots", action="store_true", help="ignore robots.txt (only on sites you may crawl)")
    ap.add_argument("--pdf_dir", help="save linked PDFs here (for rag.py ingest)")
    ap.add_argument("--output", help="passages JSONL (default: data/NAME.jsonl)")
    ap.add_argument("--config_dir", default="config")
    ap.add_argument("--force", action="store_true", help="overwrite an existing config")
    args = ap.parse_args()

    if not args.name and not args.start_url and sys.stdin.isatty():
        args.name = ask("config name", "mysite")
        args.start_url = [ask("start URL")]
        args.include = [x for x in [ask("only URLs matching (regex, optional)")] if x]
        args.exclude = [x for x in [ask("skip URLs matching (regex, optional)")] if x]
    if not args.name or not args.start_url:
        raise UserError("give --name and --start_url (or run on a terminal without flags to be asked)")

    raw = {
        "name": args.name,
        "start_urls": args.start_url,
        "allowed_domains": args.allowed_domain,
        "include": args.include,
        "exclude": args.exclude,
        "avoid_urls": args.avoid_url,
        "search_contents": [parse_selector(s) for s in args.select] or DEFAULT_SELECTORS,
        "max_pages": args.max_pages,
        "max_depth": args.max_depth,
        "concurrency": args.concurrency,
        "delay": args.delay,
        "impersonate": args.impersonate,
        "robots": not args.no_robots,
        "pdf_dir": args.pdf_dir,
        "output": args.output or f"data/{args.name}.jsonl",
    }
    path = Path(args.config_dir) / f"{args.name}.json"
    cfg = validate(raw, str(path))
    if path.exists() and not args.force:
        raise UserError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        json.dump(cfg.to_dict(), f, indent=2)
        f.write("\n")
    print(f"wrote {path}; crawl with: python scrape.py --config_file {path}")


if __name__ == "__main__":
    run_cli(main)
