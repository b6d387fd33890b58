"""A real HTTP server on 127.0.0.1 serving the Valgrind manual pages in tests/data/valgrind-html, plus the
troubles a crawler meets on real sites: robots.txt rules, a 500 page, a page that fails once with 503, a redirect
to another host, the same page under two URLs, a page the selectors miss, a PDF, and a sitemap.

Run it by hand: python tests/site_server.py [PORT]
"""

from __future__ import annotations

import functools
import sys
import threading
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SITE = Path(__file__).resolve().parent / "data" / "valgrind-html"
PDF = Path(__file__).resolve().parents[1] / "data" / "sample" / "shared-mime-info-spec.pdf"

HUB = """<!DOCTYPE html><html><head><title>Test hub</title></head><body>
<h1>Crawler test hub</h1>
<p>This hub links the Valgrind manual and the special cases a crawler has to survive.</p>
<ul>
<li><a href="/index.html">Valgrind documentation</a></li>
<li><a href="/error500.html">a page that always fails</a></li>
<li><a href="/flaky.html">a page that fails once</a></li>
<li><a href="/offsite">a redirect to another host</a></li>
<li><a href="/copy-of-quickstart.html">the quick start under a second URL</a></li>
<li><a href="/nosel.html">a page without p, li or headings</a></li>
<li><a href="/private/secret.html">disallowed by robots.txt</a></li>
<li><a href="/spec.pdf">a PDF</a></li>
<li><a href="/skip-me/page.html">excluded by the config</a></li>
<li><a href="/QuickStart.html?utm_source=hub#top">the quick start with tracking</a></li>
</ul></body></html>"""

NOSEL = """<!DOCTYPE html><html><head><title>Plain layout</title></head><body><div class="content">
<div>Valgrind tools detect memory leaks and threading bugs, and profile programs in detail. This page is laid out
with div elements only, so content selectors for paragraphs and list items find nothing here at all.</div>
<div>The main-text extractor still finds this text, because it looks at the structure and the density of words
on the page rather than at particular tags chosen in the configuration file.</div>
</div></body></html>"""

FLAKY = """<!DOCTYPE html><html><head><title>Flaky</title></head><body><p>This page answered with a 503 status the
first time it was requested, and the crawler retried it after a short backoff delay.</p></body></html>"""


class SiteHandler(SimpleHTTPRequestHandler):
    """Static pages from SITE plus the special routes above; counts every request by path."""

    hits: Counter[str]
    other_port: int

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, code: int, body: bytes, ctype: str = "text/html; charset=utf-8", extra: dict | None = None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.hits[path] += 1
        port = self.server.server_address[1]
        if path == "/robots.txt":
            body = f"User-agent: *\nDisallow: /private/\n\nSitemap: http://127.0.0.1:{port}/sitemap.xml\n"
            return self._send(200, body.encode(), "text/plain")
        if path == "/sitemap.xml":
            urls = "".join(f"<url><loc>http://127.0.0.1:{port}/{p}</loc></url>" for p in ("faq.html", "hub.html"))
            body = f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
            return self._send(200, body.encode(), "application/xml")
        if path in ("/", "/hub.html"):
            return self._send(200, HUB.encode())
        if path == "/error500.html":
            return self._send(500, b"<html><body><p>Internal Server Error</p></body></html>")
        if path == "/flaky.html":
            if self.hits[path] == 1:
                return self._send(503, b"busy", "text/plain", {"Retry-After": "0"})
            return self._send(200, FLAKY.encode())
        if path == "/offsite":
            return self._send(302, b"", extra={"Location": f"http://localhost:{self.other_port}/elsewhere.html"})
        if path == "/copy-of-quickstart.html":
            return self._send(200, (SITE / "QuickStart.html").read_bytes())
        if path == "/nosel.html":
            return self._send(200, NOSEL.encode())
        if path == "/private/secret.html":
            return self._send(200, b"<html><body><p>secret text that robots.txt keeps out of crawls</p></body></html>")
        if path == "/spec.pdf":
            return self._send(200, PDF.read_bytes(), "application/pdf")
        return super().do_GET()


def serve(port: int = 0, other_port: int = 9) -> tuple[ThreadingHTTPServer, Counter[str]]:
    """Start the site on 127.0.0.1 in a daemon thread; returns the server and its per-path request counter."""
    hits: Counter[str] = Counter()
    handler = type("Handler", (SiteHandler,), {"hits": hits, "other_port": other_port})
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(SITE)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


if __name__ == "__main__":
    srv, _ = serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8000)
    print(f"serving http://127.0.0.1:{srv.server_address[1]}/hub.html")
    threading.Event().wait()
