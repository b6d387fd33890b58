"""python bench/crawl.py [--pages 500] [--concurrency 8] [--copies 1] [--site DIR]

Crawl throughput, same loopback site, same concurrency, robots.txt on, same page limit, in one run: scrape.py vs
Scrapy 2.x (its own venv under .bench/, created on first use), each as a fresh process, each extracting the same
elements (the default selectors: h1, h2, p, li, dt, dd, pre, tr) to JSONL. Prints pages/s for both and the ratio, and
the peak memory (RSS of the crawler's whole process tree, sampled every 50 ms with psutil) of each.
Target (issue 3): >= 2x Scrapy's pages/s at concurrency 8 on several hundred pages; peak memory < 500 MB for a
10,000-page crawl (run with --copies 20 --pages 10000: the site is served under 20 prefixes).

Site: the Python 3 documentation HTML from Debian's python3-doc package (apt-get install python3-doc), real,
link-heavy pages (~530 of them), served by a threaded stdlib HTTP server in this process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from benchutil import BENCH, QuietHandler, ensure_venv, serve_directory  # noqa: E402

SCRAPY_SPIDER = r'''
import json, sys
import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import HtmlResponse

start, domain, out, pages, conc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

class Docs(scrapy.Spider):
    name = "docs"
    allowed_domains = [domain]
    start_urls = [start]

    def parse(self, response):
        if not isinstance(response, HtmlResponse):
            return
        texts = [" ".join(t.split()) for t in response.css("h1, h2, p, li, dt, dd, pre, tr").xpath("string()").getall()]
        title = response.css("title::text").get()
        yield {"url": response.url, "title": title, "text": "\n".join(t for t in texts if t)}
        for href in response.css("a::attr(href)").getall():
            if not href.startswith(("mailto:", "javascript:", "tel:")):
                yield response.follow(href, self.parse)

process = CrawlerProcess(settings={
    "CONCURRENT_REQUESTS": conc, "CONCURRENT_REQUESTS_PER_DOMAIN": conc, "ROBOTSTXT_OBEY": True,
    "CLOSESPIDER_PAGECOUNT": pages, "LOG_LEVEL": "ERROR", "TELNETCONSOLE_ENABLED": False,
    "FEEDS": {out: {"format": "jsonlines", "overwrite": True}}, "DOWNLOAD_DELAY": 0,
})
process.crawl(Docs)
process.start()
'''


class Handler(QuietHandler):
    """Static files; /cN/... maps to the site root (N copies of the site); / links every copy's index."""

    copies = 1

    def translate_path(self, path: str) -> str:
        parts = path.split("/", 2)
        if len(parts) > 2 and parts[1].startswith("c") and parts[1][1:].isdigit():
            path = "/" + parts[2]
        return super().translate_path(path)

    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            body = b"User-agent: *\nDisallow: /_sources/\n"
            ctype = "text/plain"
        elif self.path in ("/", "/start.html"):
            links = "".join(f'<li><a href="/c{i}/index.html">copy {i}</a></li>' for i in range(self.copies))
            body = f"<html><head><title>start</title></head><body><ul>{links}</ul></body></html>".encode()
            ctype = "text/html"
        else:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(site: Path, copies: int) -> int:
    return serve_directory(site, type("H", (Handler,), {"copies": copies})).server_address[1]


def run_measured(name: str, cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of the whole process tree."""
    import psutil

    t0 = time.perf_counter()
    log = BENCH / "crawl" / f"{name.replace(' ', '_')}.log"
    errfile = log.open("w")  # a file, not a pipe: a chatty crawler must not block on a full pipe
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errfile, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0.0
    while proc.poll() is None:
        try:
            tree = [ps, *ps.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20)
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    errfile.close()
    if proc.returncode != 0:
        sys.exit(f"{name} failed:\n{log.read_text()[-3000:]}")
    return wall, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--site", default="/usr/share/doc/python3/html")
    ap.add_argument("--skip_scrapy", action="store_true", help="only ours (e.g. for the 10,000-page memory check)")
    args = ap.parse_args()
    site = Path(args.site)
    if not (site / "index.html").exists():
        sys.exit(f"{site}: no site; apt-get install python3-doc, or pass --site DIR")
    port = serve(site, args.copies)
    start = f"http://127.0.0.1:{port}/start.html"
    work = BENCH / "crawl"
    work.mkdir(parents=True, exist_ok=True)
    results = {}

    cfg = {"start_urls": [start], "output": str(work / "ours.jsonl"), "concurrency": args.concurrency,
           "max_pages": args.pages, "max_depth": 50, "robots": True, "sitemap": False, "fallback": False,
           "retries": 1, "backoff": 0.05}
    for suffix in ("", ".crawl.sqlite", ".crawl.sqlite-wal", ".crawl.sqlite-shm"):
        (work / f"ours.jsonl{suffix}").unlink(missing_ok=True)
    (work / "ours.json").write_text(json.dumps(cfg))
    wall, peak = run_measured("scrape.py", [sys.executable, "scrape.py", "--config_file", str(work / "ours.json"),
                                            "--no_progress"])
    results["archivesrag scrape.py"] = (wall, peak)

    if not args.skip_scrapy:
        py = ensure_venv("scrapy-venv", ["scrapy>=2.11,<3"], "scrapy", torch=False)
        spider = work / "spider.py"  # a file, not -c: Scrapy reads its callbacks' source
        spider.write_text(SCRAPY_SPIDER)
        wall, peak = run_measured("scrapy", [str(py), str(spider), start, "127.0.0.1",
                                             str(work / "scrapy.jsonl"), str(args.pages), str(args.concurrency)])
        results["Scrapy"] = (wall, peak)

    print(f"{args.pages} pages, concurrency {args.concurrency}, robots on, site {site} x{args.copies}")
    rates = {}
    for name, (wall, peak) in results.items():
        rates[name] = args.pages / wall
        print(f"  {name:22s} {rates[name]:7.1f} pages/s  (wall {wall:.1f} s incl. start-up, peak RSS {peak:.0f} MB)")
    if "Scrapy" in rates:
        print(f"ratio pages/s ours/Scrapy = {rates['archivesrag scrape.py'] / rates['Scrapy']:.2f}  (target >= 2.0)")


if __name__ == "__main__":
    main()
