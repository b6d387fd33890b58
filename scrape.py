"""python scrape.py --config_file config/interpares.json

Crawl the site a config describes (make one with init_config.py) and write passages JSONL (text, url, title,
heading path) for gen_query.py, mine_hn.py and rag.py. Polite by default (robots.txt, per-host delay, retries
with backoff). Interrupt it any way you like, even kill -9: rerunning the same command continues where it
stopped, without duplicated or lost passages (state: OUTPUT.crawl.sqlite beside the output).
"""

from __future__ import annotations

import argparse

from archivesrag.errors import run_cli
from archivesrag.scraping import crawl, load_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config_file", required=True, help="JSON config written by init_config.py")
    ap.add_argument("--output", help="override the config's output path")
    ap.add_argument("--max_pages", type=int, help="override the config's max_pages")
    ap.add_argument("--no_progress", action="store_true", help="no progress bar (logs only)")
    args = ap.parse_args()
    cfg = load_config(args.config_file)
    if args.output:
        cfg.output = args.output
    if args.max_pages is not None:
        cfg.max_pages = args.max_pages
    stats = crawl(cfg, show_progress=not args.no_progress)
    print(stats.summary())


if __name__ == "__main__":
    run_cli(main)
