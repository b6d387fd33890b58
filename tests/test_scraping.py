"""init_config.py / scrape.py / archivesrag.scraping against a real HTTP server on 127.0.0.1 serving real pages
(the Valgrind manual, GFDL) plus the troubles of real sites (tests/site_server.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from site_server import serve

from archivesrag.errors import UserError
from archivesrag.htmltext import extract_page
from archivesrag.scraping import canonical_url, crawl, load_config, validate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def elsewhere():
    """A second host (localhost vs 127.0.0.1): the crawler must never reach it."""
    srv, hits = serve()
    yield srv.server_address[1], hits
    srv.shutdown()


@pytest.fixture(scope="module")
def site(elsewhere):
    srv, hits = serve(other_port=elsewhere[0])
    yield f"http://127.0.0.1:{srv.server_address[1]}", hits
    srv.shutdown()


def config(site_url: str, tmp_path: Path, **over) -> dict:
    raw = {
        "start_urls": [f"{site_url}/hub.html"],
        "exclude": ["/skip-me/"],
        "output": str(tmp_path / "out.jsonl"),
        "backoff": 0.02,
        "pdf_dir": str(tmp_path / "pdfs"),
        "concurrency": 4,
    }
    raw.update(over)
    return raw


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def full_crawl(site, elsewhere, tmp_path_factory):
    url, hits = site
    tmp = tmp_path_factory.mktemp("crawl")
    before = Counter(hits)
    stats = crawl(validate(config(url, tmp), "test"), show_progress=False)
    return stats, read(tmp / "out.jsonl"), Counter(hits) - before, tmp


def test_real_pages_become_passages_with_heading_paths(full_crawl, site):
    _, rows, _, _ = full_crawl
    manual = [r for r in rows if r["url"].endswith("/manual-intro.html")]
    assert manual and all(r["title"] and r["text"] for r in manual)
    assert any("Valgrind" in " ".join(r.get("headings", [])) for r in manual)
    assert all(len(r["text"]) <= 1500 for r in rows)


def test_robots_disallowed_page_is_never_requested(full_crawl):
    stats, rows, hits, _ = full_crawl
    assert hits["/private/secret.html"] == 0 and stats.skipped["robots_disallowed"] == 1
    assert not any("secret" in r["text"] for r in rows)


def test_404_and_500_are_counted_and_500_is_retried(full_crawl):
    stats, _, hits, _ = full_crawl
    assert stats.skipped["http_404"] >= 1  # links to manual pages that are not in the test copy
    assert stats.skipped["http_500"] == 1 and hits["/error500.html"] == 4  # 1 try + 3 retries


def test_flaky_page_is_retried_then_kept(full_crawl):
    _, rows, hits, _ = full_crawl
    assert hits["/flaky.html"] == 2 and any(r["url"].endswith("/flaky.html") for r in rows)


def test_redirect_off_domain_is_dropped_without_fetching_it(full_crawl, elsewhere):
    stats, _, _, _ = full_crawl
    assert stats.skipped["offsite_redirect"] == 1 and sum(elsewhere[1].values()) == 0


def test_same_page_under_two_urls_is_written_once(full_crawl):
    stats, rows, _, _ = full_crawl
    assert stats.skipped["duplicate_content"] >= 1
    texts = [r["text"] for r in rows]
    assert len(texts) == len(set(texts))
    quick = {r["url"].rsplit("/", 1)[-1] for r in rows if "Quick Start Guide" in " ".join(r.get("headings", []))}
    assert len(quick & {"copy-of-quickstart.html", "QuickStart.html"}) == 1  # whichever came first, not both


def test_page_where_selectors_miss_falls_back_to_main_text(full_crawl):
    stats, rows, _, _ = full_crawl
    nosel = [r for r in rows if r["url"].endswith("/nosel.html")]
    assert nosel and "memory leaks" in nosel[0]["text"] and stats.via_fallback == 1


def test_exclude_filter_tracking_params_and_pdfs(full_crawl):
    _, rows, hits, tmp = full_crawl
    assert hits["/skip-me/page.html"] == 0
    assert not any("utm_" in r["url"] or "#" in r["url"] for r in rows)
    assert (tmp / "pdfs" / "spec.pdf").read_bytes()[:5] == b"%PDF-"


def test_sitemap_seeds_urls(full_crawl):
    _, _, hits, _ = full_crawl
    assert hits["/sitemap.xml"] == 1 and hits["/faq.html"] == 1


def test_include_filter_and_max_pages(site, tmp_path):
    url, _ = site
    raw = config(url, tmp_path, include=[r"hub|index|manual"], max_pages=5, sitemap=False)
    stats = crawl(validate(raw, "test"), show_progress=False)
    rows = read(tmp_path / "out.jsonl")
    assert stats.fetched == 5
    assert all(any(w in r["url"] for w in ("hub", "index", "manual")) for r in rows)


def test_custom_selectors_take_only_matching_elements(site, tmp_path):
    url, _ = site
    raw = config(url, tmp_path, search_contents=[{"tag": "li"}], max_depth=0, sitemap=False)
    crawl(validate(raw, "test"), show_progress=False)
    rows = read(tmp_path / "out.jsonl")
    assert len(rows) == 1 and "Valgrind documentation" in rows[0]["text"]
    assert "This hub links" not in rows[0]["text"]


def test_kill_nine_then_rerun_equals_an_uninterrupted_crawl(site, full_crawl, tmp_path):
    url, _ = site
    # One request at a time with a per-host delay: slow enough to kill it mid-crawl.
    raw = config(url, tmp_path, concurrency=1, delay=0.05)
    cfg_file = tmp_path / "site.json"
    cfg_file.write_text(json.dumps(raw))
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "scrape.py", "--config_file", str(cfg_file), "--no_progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 40):
        time.sleep(0.02)
    workers = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert workers and not alive, "parse workers outlived the killed crawler"
    partial = out.read_text().count("\n")
    assert 0 < partial < len(full_crawl[1])
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stderr
    resumed = read(out)
    assert len({r["id"] for r in resumed}) == len(resumed)  # nothing duplicated
    assert Counter(r["text"] for r in resumed) == Counter(r["text"] for r in full_crawl[1])  # nothing lost


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"start_urls": ["https://x.org/"], "max_page": 5}', "unknown key 'max_page'"),
        ('{"start_urls": ["https://x.org/"], "include": ["(unclosed"]}', "'include': bad regex"),
        ('{"start_urls": ["x.org/home"]}', "'start_urls': 'x.org/home' is not an http(s) URL"),
        ('{"start_urls": ["https://x.org/"],\n "delay": -1}', "'delay' must be"),
        ('{"start_urls": ["https://x.org/"],\n "concurrency": 8,,}', ":2: not valid JSON"),
        ('{"start_urls": ["https://x.org/"], "search_contents": [{"tag": "p", "id": "x"}]}', "'search_contents'"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, content, message):
    cfg = tmp_path / "bad.json"
    cfg.write_text(content)
    proc = subprocess.run(
        [sys.executable, "scrape.py", "--config_file", str(cfg)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {cfg}") and message in line and "Traceback" not in proc.stderr


def test_init_config_writes_a_valid_config_and_keeps_an_existing_one(tmp_path):
    args = [
        sys.executable,
        "init_config.py",
        "--name",
        "docs",
        "--start_url",
        "https://docs.example.org/",
        "--exclude",
        r"\.zip$",
        "--select",
        "div.content",
        "--config_dir",
        str(tmp_path),
    ]
    first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    cfg = load_config(tmp_path / "docs.json")
    assert cfg.allowed_domains == ["docs.example.org"] and cfg.search_contents == [{"tag": "div", "class": "content"}]
    assert cfg.allows("https://docs.example.org/a.html") and not cfg.allows("https://docs.example.org/a.zip")
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "--force" in again.stderr


def test_shipped_interpares_config_loads():
    cfg = load_config(ROOT / "config" / "interpares.json")
    assert cfg.allows("https://interparestrustai.org/about") and not cfg.allows("https://example.com/")


def test_canonical_urls():
    assert canonical_url("HTTP://Example.org:80/docs/?utm_source=x&b=2&a=1#intro") == "http://example.org/docs?a=1&b=2"
    assert canonical_url("https://example.org/") == "https://example.org/"


def test_heading_path_follows_document_order():
    html = "<h1>Guide</h1><h2>Install</h2><p>Run the installer now.</p><h2>Use</h2><p>Open the app and go.</p>"
    page = extract_page(html, "https://x.org/", min_chars=1)
    assert [(p.headings, p.text) for p in page.passages] == [
        (["Guide", "Install"], "Run the installer now."),
        (["Guide", "Use"], "Open the app and go."),
    ]


# The SQLite documentation's markup (public domain): a menu of links, and a syntax diagram's toggles before the text.
SQLITE_PAGE = """<title>RETURNING</title><div class="menu"><ul><li><a href="index.html">Home</a>
<li><a href="docs.html">Documentation</a><li><a href="download.html">Download</a></ul></div>
<h1>1. Overview</h1><p><b><a href="syntax/returning-clause.html">returning-clause:</a></b>
<button onclick='hideorshow("x1","x2")'>hide</button></p><p><b><a href="syntax/expr.html">expr:</a></b>
<button onclick='hideorshow("x3","x4")'>show</button></p>
<p>The RETURNING syntax has been supported by SQLite since version 3.35.0 (2021-03-12).</p>"""


def test_menus_and_toggles_made_only_of_links_are_not_passages():
    page = extract_page(SQLITE_PAGE, "https://x.org/lang_returning.html", min_chars=1)
    assert [p.text for p in page.passages] == [
        "The RETURNING syntax has been supported by SQLite since version 3.35.0 (2021-03-12)."
    ]


def test_a_page_that_is_only_a_list_of_links_keeps_them():
    html = '<h1>Manuals</h1><ul><li><a href="a.html">User manual</a></li><li><a href="b.html">FAQ</a></li></ul>'
    page = extract_page(html, "https://x.org/", min_chars=1)
    assert page.passages[0].text == "User manual\nFAQ" and page.via == "selectors"


def test_a_sentence_with_a_link_in_it_is_content():
    html = '<p>Install it with <a href="apt.html">apt</a>.</p><p>Then run it.</p>'
    assert extract_page(html, "https://x.org/", min_chars=1).passages[0].text == "Install it with apt.\nThen run it."


# The Git manual's markup (asciidoc, GPL-2): an option list is a <dl>; the option's names are <dt>s.
GIT_OPTIONS = """<h2>OPTIONS</h2><div class="dlist"><dl><dt class="hdlist1">-l</dt><dt class="hdlist1">--local</dt>
<dd><p>Clone by copying the objects directory.</p></dd><dt class="hdlist1">--depth &lt;depth&gt;</dt>
<dd><p>Create a shallow clone with a history truncated to the specified number of commits.</p></dd></dl></div>
<h2>EXAMPLES</h2><div class="listingblock"><pre>$ git clone --depth 1 https://x.org/repo.git</pre></div>"""


def test_an_option_list_keeps_each_option_name_with_its_description_and_code_blocks_are_text():
    page = extract_page(GIT_OPTIONS, "https://x.org/git-clone.html", min_chars=1)
    assert [(p.headings, p.text) for p in page.passages] == [
        (["OPTIONS"], "-l, --local — Clone by copying the objects directory.\n--depth <depth> — Create a shallow clone "
         "with a history truncated to the specified number of commits."),
        (["EXAMPLES"], "$ git clone --depth 1 https://x.org/repo.git"),
    ]


# The Apache HTTP Server manual's markup (Apache-2.0): each directive's default is in a table; a page laid out in a
# table (as many older sites are) keeps its paragraphs as paragraphs.
APACHE_DIRECTIVE = """<h2>DeflateBufferSize Directive</h2><table class="directive">
<tr><th><a href="directive-dict.html#Syntax">Syntax:</a></th><td><code>DeflateBufferSize value</code></td></tr>
<tr><th><a href="directive-dict.html#Default">Default:</a></th><td><code>DeflateBufferSize 8096</code></td></tr>
</table><p>The size in bytes of the fragments that zlib should compress at one time.</p>"""
LAYOUT_TABLE = """<table><tr><td><a href="/">Home</a></td><td><h1>Finding aids</h1><p>The fonds holds 40 boxes.</p>
<ul><li>Series 1: letters</li></ul></td></tr></table>"""


def test_a_table_row_is_a_block_with_its_cells_apart():
    page = extract_page(APACHE_DIRECTIVE, "https://x.org/mod_deflate.html", min_chars=1)
    assert page.passages[0].text == (
        "Syntax — DeflateBufferSize value\nDefault — DeflateBufferSize 8096\n"
        "The size in bytes of the fragments that zlib should compress at one time."
    )


def test_a_page_laid_out_in_a_table_keeps_its_paragraphs_and_lists():
    page = extract_page(LAYOUT_TABLE, "https://x.org/fonds.html", min_chars=1)
    assert [(p.headings, p.text) for p in page.passages] == [
        (["Finding aids"], "The fonds holds 40 boxes.\nSeries 1: letters")
    ]


# The CMake manual's markup (Sphinx/docutils, BSD-3-clause): every cell wraps its text in a paragraph, a cell may be
# a link, and every heading ends in a permalink anchor.
SPHINX_TABLE = """<h1>CMAKE_&lt;LANG&gt;_COMPILER_ID<a class="headerlink" href="#cmake-lang-compiler-id"
title="Permalink to this headline">¶</a></h1><table class="docutils align-default">
<thead><tr class="row-odd"><th class="head"><p>Value</p></th><th class="head"><p>Name</p></th></tr></thead><tbody>
<tr class="row-even"><td><p><code class="docutils literal notranslate"><span class="pre">NVHPC</span></code></p></td>
<td><p><a class="reference external" href="https://developer.nvidia.com/hpc-compilers">NVIDIA HPC Compiler</a></p>
</td></tr></tbody></table>"""


def test_a_sphinx_table_row_is_one_block_and_keeps_its_linked_cell():
    page = extract_page(SPHINX_TABLE, "https://x.org/CMAKE_LANG_COMPILER_ID.html", min_chars=1)
    assert [(p.headings, p.text) for p in page.passages] == [
        (["CMAKE_<LANG>_COMPILER_ID"], "Value — Name\nNVHPC — NVIDIA HPC Compiler")
    ]


def test_a_permalink_anchor_stays_out_of_headings_and_option_terms():
    html = """<h2>Options<a class="headerlink" href="#options" title="Permalink to this heading">¶</a></h2><dl>
<dt id="cmdoption-cmake-S"><span class="pre">-S</span> &lt;path-to-source&gt;<a class="headerlink"
href="#cmdoption-cmake-S">¶</a></dt><dd><p>Path to root directory of the CMake project to build.</p></dd></dl>
<p>See <a href="#">#</a> and <a href="other.html">¶</a>.</p>"""
    page = extract_page(html, "https://x.org/cmake.1.html", min_chars=1)
    assert [(p.headings, p.text) for p in page.passages] == [
        (["Options"], "-S <path-to-source> — Path to root directory of the CMake project to build.\nSee and ¶.")
    ]


# The Postfix manual's markup (IPL-1.0 / EPL-2.0): a whole man page set in one <pre>, its section names in bold
# capitals, its words hyphenated at line ends by the formatter.
POSTFIX_MAN_PAGE = """<title> Postfix manual - postqueue(1) </title><body><pre>
POSTQUEUE(1)                                                      POSTQUEUE(1)

<b>NAME</b>
       postqueue - Postfix queue control and listing

<b>DESCRIPTION</b>
       -j     Produce a queue listing in JSON format, based on output from the
              <a href="showq.8.html"><b>showq</b>(8)</a> daemon.  The result is a stream of zero  or  more  JSON
              objects,  one per queue file.

       -p     Produce a traditional sendmail-style queue listing.

<b>CONFIGURATION PARAMETERS</b>
       <b><a href="postconf.5.html#trigger_timeout">trigger_timeout</a> (10s)</b>
              The time limit for sending a trigger to a Postfix daemon.

       Available in Postfix version 2.2 and later:

       <b><a href="postconf.5.html#authorized_flush_users">authorized_flush_users</a> (static:anyone)</b>
              List  of users who are authorized to flush the queue.  Such de-
              cisions are made by the administrator.
</pre></body>"""


def test_a_man_page_in_one_pre_keeps_its_sections_paragraphs_and_whole_words():
    page = extract_page(POSTFIX_MAN_PAGE, "https://x.org/postqueue.1.html", min_chars=1)
    assert [(p.headings, p.text) for p in page.passages] == [
        ([], "POSTQUEUE(1) POSTQUEUE(1)"),
        (["NAME"], "postqueue - Postfix queue control and listing"),
        (["DESCRIPTION"], "-j Produce a queue listing in JSON format, based on output from the\nshowq(8) daemon. The "
         "result is a stream of zero or more JSON\nobjects, one per queue file.\n-p Produce a traditional "
         "sendmail-style queue listing."),
        (["CONFIGURATION PARAMETERS"], "trigger_timeout (10s)\nThe time limit for sending a trigger to a Postfix "
         "daemon.\nAvailable in Postfix version 2.2 and later:\nauthorized_flush_users (static:anyone)\nList of "
         "users who are authorized to flush the queue. Such decisions are made by the administrator."),
    ]


def test_a_capitalised_line_heads_a_pre_only_when_flush_left_with_the_lines_under_it_indented():
    html = "<h2>Schema</h2><pre>NUMERIC</pre><pre>SELECT\nFROM t;\n\n  NOTE\n  keep it</pre>"
    page = extract_page(html, "https://x.org/sql.html", min_chars=1)
    assert [(p.headings, p.text) for p in page.passages] == [
        (["Schema"], "NUMERIC\nSELECT\nFROM t;\nNOTE\nkeep it")
    ]


def test_unknown_key_error_is_a_user_error():
    with pytest.raises(UserError, match="unknown key 'start_url'"):
        validate({"start_url": "https://x.org/"}, "cfg.json")
