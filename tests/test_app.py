"""gradioapp.py / archivesrag.app in a real browser: Debian's Chromium driven by playwright, the real llama.cpp
server with the bundled Qwen GGUF, the bundled embedder, real PDFs (the sample's shared-mime-info spec, and an
encrypted copy of a generated one). A screenshot of the answered chat is saved to artifacts/app-answer.png."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pdfs import encrypted_pdf, sample_passages, text_pdf
from test_llm import closed_port as free_port

from archivesrag.app import AppSettings, Engine, launch, parse_auth, safe_filename
from archivesrag.errors import UserError
from archivesrag.llm import get_llm

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SPEC_PDF = ROOT / "data" / "sample" / "shared-mime-info-spec.pdf"
ARTIFACTS = ROOT / "artifacts"
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="apt-get install chromium (scripts/setup.sh --dev)"
)


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    d = tmp_path_factory.mktemp("app-docs")
    text_pdf(d / "constitution.pdf", [p["text"] for p in sample_passages()[:3]])
    return d


@pytest.fixture(scope="module")
def app(docs, embedder, llama_server):
    settings = AppSettings(data_path=str(docs), port=free_port(), max_tokens=80, top_k=3)
    engine = Engine.start(settings, llm=get_llm(llama_server, model="q"), embedder=embedder)
    engine.ingest_data_path().join(timeout=120)
    demo = launch(engine, block=False)
    yield engine, demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_FLAGS, headless=True)
        yield b
        b.close()


@needs_chromium
def test_upload_a_pdf_then_ask_about_it_in_the_browser(app, browser):
    _, url = app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.locator("#upload input[type=file]").set_input_files(str(SPEC_PDF))
    page.locator("#upload-result").get_by_text("shared-mime-info-spec.pdf: indexed").wait_for(timeout=120_000)
    page.locator("#status").get_by_text("from 2 files").wait_for(timeout=10_000)

    page.locator("#question textarea").fill("What is the shared MIME-info database?")
    page.locator("#ask").click()
    sources = page.locator("#chat").get_by_text("Sources")
    sources.wait_for(timeout=240_000)
    links = page.locator("#chat a", has_text="shared-mime-info-spec.pdf, page")
    assert links.count() >= 1
    href = links.first.get_attribute("href")
    assert "shared-mime-info-spec.pdf#page=" in href
    details = page.locator("#chat details").first  # each source folds out the passage that matched
    details.locator("summary").click(position={"x": 4, "y": 6})  # the disclosure triangle, not the link
    snippet = details.locator("blockquote")
    snippet.wait_for(state="visible", timeout=10_000)
    assert len(snippet.inner_text().split()) >= 4
    answer_text = page.locator("#chat").inner_text()
    assert len(answer_text.split("Sources")[0].split("MIME-info database?")[-1].split()) >= 3  # a real answer
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-answer.png"), full_page=True)
    # the source link serves the uploaded PDF itself
    assert httpx.get(url.rstrip("/") + href.split("#")[0], timeout=10).headers["content-type"] == "application/pdf"
    page.close()


@needs_chromium
def test_bad_uploads_show_errors_and_the_app_still_answers(app, browser, docs, tmp_path):
    _, url = app
    locked = encrypted_pdf(tmp_path / "locked.pdf", docs / "constitution.pdf")
    notes = tmp_path / "notes.pdf"
    notes.write_text("this is plain text with a .pdf name")
    page = browser.new_page()
    page.goto(url)
    page.locator("#upload input[type=file]").set_input_files([str(locked), str(notes)])
    result = page.locator("#upload-result")
    result.get_by_text("locked.pdf: skipped").wait_for(timeout=60_000)
    assert "encrypted" in result.inner_text()
    assert "notes.pdf: rejected (not a PDF file)" in result.inner_text()
    page.locator("#question textarea").fill("How long is the term of a senator?")
    page.locator("#ask").click()
    page.locator("#chat a", has_text="constitution.pdf, page").first.wait_for(timeout=240_000)
    page.close()


def test_api_client_gets_an_answer_with_sources(app):
    from gradio_client import Client

    _, url = app
    history, _ = Client(url, verbose=False).predict("Who has the power to declare war?", [], 2, True, api_name="/ask")
    reply = history[-1]["content"]
    text = reply[0]["text"] if isinstance(reply, list) else reply
    assert "**Sources**" in text and "constitution.pdf, page" in text


def test_duplicate_upload_is_skipped(app):
    engine, _ = app
    result = engine.add_upload(str(SPEC_PDF), "copy of spec.pdf")
    assert result.status in ("skipped", "indexed")  # indexed when the browser test did not run first
    again = engine.add_upload(str(SPEC_PDF), "another copy.pdf")
    assert again.status == "skipped" and again.detail.startswith("duplicate of")


def test_oversized_upload_is_rejected(app, tmp_path):
    engine, _ = app
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"0" * int(engine.settings.max_file_size_mb * 1024 * 1024))
    assert engine.add_upload(str(big)).detail.startswith("larger than")


def test_auth_refuses_unauthenticated_api_calls(docs, embedder, llama_server, tmp_path):
    from gradio_client import Client

    settings = AppSettings(data_path=str(docs), index=str(tmp_path / "idx"), port=free_port(), auth="ana:s3cret")
    engine = Engine.start(settings, llm=get_llm(llama_server, model="q"), embedder=embedder)
    demo = launch(engine, block=False)
    try:
        assert httpx.get(demo.local_url + "config", timeout=10).status_code in (401, 403)
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises its own error types by version
            Client(demo.local_url, verbose=False)
        ok = Client(demo.local_url, auth=("ana", "s3cret"), verbose=False)
        assert ok.predict(None, api_name="/upload") == ""
    finally:
        demo.close()


def test_share_without_network_keeps_serving_locally(docs, embedder, llama_server, tmp_path, caplog):
    settings = AppSettings(data_path=str(docs), index=str(tmp_path / "idx"), port=free_port(), share=True)
    engine = Engine.start(settings, llm=get_llm(llama_server, model="q"), embedder=embedder)
    demo = launch(engine, block=False)
    try:
        assert "no --auth is set" in caplog.text
        assert httpx.get(demo.local_url, timeout=10).status_code == 200
    finally:
        demo.close()


def test_sanitised_upload_names():
    assert safe_filename("../../x/.hidden report.pdf") == "hidden_report.pdf"
    assert safe_filename("Ünïcode?.PDF") == "Unicode.pdf"


def test_auth_file_and_bad_auth(tmp_path):
    f = tmp_path / "users"
    f.write_text("# team\nana:one\nbo:two\n")
    assert parse_auth(str(f)) == [("ana", "one"), ("bo", "two")]
    with pytest.raises(UserError, match="user:password"):
        parse_auth("nopassword")


def test_readme_demo_command_serves_the_sample_documents():
    """The README's first command, minus setup: `python gradioapp.py` with no flags (a free port instead of 7860)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "gradioapp.py", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "is running at" in line:
                break
        assert f"http://127.0.0.1:{port}/" in lines[-1], "".join(lines[-20:])
        assert any("using the bundled Qwen" in x or "LLM: " in x for x in lines)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_port_in_use_is_one_line(docs, embedder, llama_server, app):
    engine, url = app
    busy = int(url.rstrip("/").rsplit(":", 1)[1])
    settings = AppSettings(data_path=str(docs), index=str(engine.index_dir), port=busy)
    with pytest.raises(UserError, match="pass another --port"):
        launch(Engine.start(settings, llm=engine.llm, embedder=embedder), block=False)


def test_unreachable_llm_is_one_line_at_start(docs, tmp_path):
    proc = subprocess.run([sys.executable, "gradioapp.py", "--data_path", str(docs), "--index", str(tmp_path / "i"),
                           "--model", "http://127.0.0.1:9/v1", "--embedding_model", "bundled"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "127.0.0.1:9" in proc.stderr


def test_cli_missing_data_path_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "gradioapp.py", "--data_path", str(tmp_path / "nope"), "--model",
                           "bundled", "--embedding_model", "bundled"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: --data_path")
    assert not (tmp_path / "nope").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)
