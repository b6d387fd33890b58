"""The Gradio demo: chat with your documents, with sources you can click, and PDF upload on the fly.

Everything heavy is the RAG core (:mod:`archivesrag.rag`): this module holds one :class:`Engine` per process
(embedder, index, LLM, a lock) and the Blocks UI over it. Each browser session keeps its own chat history
(Gradio keeps component state per session); the index is shared, so an upload is visible to everyone.

Safe by default: binds 127.0.0.1; ``--share`` without ``--auth`` warns; uploads must be PDFs under
``max_file_size`` and are copied under ``<index>/uploads`` with sanitised names; the queue is bounded.

Example:
    >>> engine = Engine.start(AppSettings(data_path="data/sample"))
    >>> build_ui(engine).launch(server_name="127.0.0.1")
"""

from __future__ import annotations

import html
import logging
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from archivesrag.embedder import Embedder, default_embedding_model, load_embedder
from archivesrag.errors import UserError
from archivesrag.llm import LLM, default_llm_spec, get_llm
from archivesrag.rag import IndexStore, Searcher, answer, ingest
from archivesrag.records import file_sha256, safe_filename

log = logging.getLogger(__name__)

INDEX_DIRNAME = ".archivesrag-index"


@dataclass
class AppSettings:
    """gradioapp.py's flags (see its --help)."""

    data_path: str | None = None
    model: str | None = None
    embedding_model: str | None = None
    index: str | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    auth: str | None = None
    max_file_size_mb: float = 50.0
    top_k: int = 3
    hybrid: bool = True
    rerank_model: str | None = "bundled"  # None turns reranking off (and hides its checkbox)
    ocr: str = "auto"
    min_score: float = 0.25
    max_queue: int = 16
    max_tokens: int = 512

    def index_dir(self) -> Path:
        """``--index``, else ``<data_path>/.archivesrag-index`` (a hidden folder, so ingest skips it)."""
        if self.index:
            return Path(self.index).expanduser()
        if self.data_path:
            return Path(self.data_path).expanduser() / INDEX_DIRNAME
        raise UserError("give --data_path (documents to index) or --index (an existing index)")


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """``user:password``, or a file with one ``user:password`` per line, into Gradio's auth list.

    Example:
        >>> parse_auth("ana:s3cret")
        [('ana', 's3cret')]
    """
    if not value:
        return None
    path = Path(value).expanduser()
    lines = path.read_text().splitlines() if path.is_file() else [value]
    pairs = []
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, password = line.strip().partition(":")
        if not (sep and user and password):
            where = f"{path}:{n}" if path.is_file() else "--auth"
            raise UserError(f"{where}: expected user:password")
        pairs.append((user, password))
    if not pairs:
        raise UserError(f"{value}: no user:password lines")
    return pairs


@dataclass
class UploadResult:
    """One uploaded file's outcome, shown to the user."""

    name: str
    status: str  # "indexed" | "skipped" | "rejected"
    detail: str = ""

    def line(self) -> str:
        return f"**{self.name}**: {self.status}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Engine:
    """What every session shares: the embedder, the index, the LLM; the lock serialises index access."""

    settings: AppSettings
    embedder: Embedder
    llm: LLM
    index_dir: Path
    store: IndexStore
    lock: threading.Lock = field(default_factory=threading.Lock)
    progress: dict[str, Any] = field(default_factory=lambda: {"done": 0, "total": 0, "file": "", "finished": True})
    _searchers: dict[tuple[bool, bool], Searcher] = field(default_factory=dict)
    _reranker: Any = None

    @classmethod
    def start(cls, settings: AppSettings, llm: LLM | None = None, embedder: Embedder | None = None) -> Engine:
        """Load models and open (or create) the index; the data-path ingest starts with :meth:`ingest_data_path`."""
        index_dir = settings.index_dir()
        if settings.data_path and not Path(settings.data_path).expanduser().is_dir():
            raise UserError(f"--data_path {settings.data_path}: no such directory")
        if embedder is None:
            embedder = load_embedder(settings.embedding_model or default_embedding_model())
        if llm is None:
            llm = get_llm(settings.model or default_llm_spec())
            llm.check()  # an unreachable --model is one line now, not an error on the first question
        store = IndexStore.open(index_dir, model_name=embedder.name, dim=embedder.dim)
        return cls(settings, embedder, llm, index_dir, store)

    @property
    def uploads_dir(self) -> Path:
        return self.index_dir / "uploads"

    def ingest_data_path(self) -> threading.Thread | None:
        """Index ``data_path`` in the background (incremental: a restart only reads what changed)."""
        if not self.settings.data_path:
            return None
        self.progress.update(finished=False)

        def on_file(done: int, total: int, name: str) -> None:
            self.progress.update(done=done, total=total, file=name)

        def work() -> None:
            try:
                with self.lock:
                    report = ingest(
                        [self.settings.data_path],
                        self.index_dir,
                        self.embedder,
                        show_progress=True,
                        on_file=on_file,
                        ocr=self.settings.ocr,
                    )
                self.progress.update(summary=report.summary())
            except Exception as err:  # shown in the UI; the app keeps serving what is indexed
                log.exception("ingest of %s failed", self.settings.data_path)
                self.progress.update(summary=f"ingest failed: {err}")
            finally:
                self.progress.update(finished=True, done=self.progress["total"])

        thread = threading.Thread(target=work, name="ingest", daemon=True)
        thread.start()
        return thread

    def status_markdown(self) -> str:
        """The side panel: active models, index size, ingest progress."""
        files = len(self.store.sources())
        lines = [
            f"**LLM:** `{self.llm}`",
            f"**Embedding model:** `{self.embedder.name}`",
            f"**Reranker:** `{self.settings.rerank_model or 'off'}`",
            f"**Index:** {self.store.count()} chunks from {files} files",
        ]
        p = self.progress
        if not p["finished"]:
            lines.append(f"**Indexing:** {p['done']}/{p['total']} files… ({p['file']})")
        elif p.get("summary"):
            lines.append(f"**Last ingest:** {p['summary']}")
        return "  \n".join(lines)

    # ------------------------------------------------------------ uploads

    def add_upload(self, tmp_path: str, original_name: str | None = None) -> UploadResult:
        """Check, copy under ``uploads/`` and ingest one uploaded file; never raises for a bad file."""
        src = Path(tmp_path)
        name = safe_filename(original_name or src.name)
        if src.suffix.lower() != ".pdf" and not name.endswith(".pdf"):
            return UploadResult(name, "rejected", "only PDF files can be uploaded")
        limit = self.settings.max_file_size_mb * 1024 * 1024
        if src.stat().st_size > limit:
            return UploadResult(name, "rejected", f"larger than {self.settings.max_file_size_mb:g} MB")
        with src.open("rb") as f:
            if not f.read(1024).lstrip().startswith(b"%PDF-"):
                return UploadResult(name, "rejected", "not a PDF file")
        digest = file_sha256(src)
        with self.lock:
            for source, known in self.store.sources().items():
                if known == digest:
                    return UploadResult(name, "skipped", f"duplicate of {Path(source).name}")
            self.uploads_dir.mkdir(parents=True, exist_ok=True)
            dest = self.uploads_dir / name
            n = 1
            while dest.exists():
                dest = self.uploads_dir / f"{Path(name).stem}-{n}.pdf"
                n += 1
            shutil.copyfile(src, dest)
            report = ingest([dest], self.index_dir, self.embedder, show_progress=False, ocr=self.settings.ocr)
        if report.failed:
            dest.unlink(missing_ok=True)
            reason = next(iter(report.failed.values()))
            return UploadResult(dest.name, "skipped", reason.replace("no_text", "no text"))
        pages = f"{report.pages} page" + "s" * (report.pages != 1)
        ocr = f", {report.ocr_pages} by OCR" if report.ocr_pages else ""
        return UploadResult(dest.name, "indexed", f"{pages}{ocr}, {report.chunks_added} chunks")

    def add_uploads(self, files: list[Any] | None) -> str:
        """Gradio handler: per-file results as Markdown lines."""
        if not files:
            return ""
        results = []
        for f in files:
            path = f if isinstance(f, str) else getattr(f, "name", str(f))
            results.append(self.add_upload(path, getattr(f, "orig_name", None)))
        log.info("uploads: %s", "; ".join(f"{r.name} {r.status}" for r in results))
        return "\n".join(r.line() for r in results)

    # ------------------------------------------------------------ chat

    def searcher(self, hybrid: bool, rerank: bool = False) -> Searcher:
        """One Searcher per mode, kept: a hybrid one caches its BM25 index until the index changes, and all share
        one loaded reranker."""
        rerank = rerank and bool(self.settings.rerank_model)
        if rerank and self._reranker is None:
            from archivesrag.reranker import load_reranker

            self._reranker = load_reranker(str(self.settings.rerank_model))
        key = (hybrid, rerank)
        if key not in self._searchers:
            self._searchers[key] = Searcher(
                self.store, self.embedder, hybrid=hybrid, rerank_model=self._reranker if rerank else None
            )
        return self._searchers[key]

    def respond(
        self,
        message: str,
        history: list[dict[str, Any]] | None,
        top_k: int,
        hybrid: bool,
        rerank: bool | None = None,
    ) -> Iterator[Any]:
        """Gradio handler: stream the answer into the chat, then append its numbered, clickable sources."""
        history = list(history or [])
        message = (message or "").strip()
        if not message:
            yield history, ""
            return
        history += [{"role": "user", "content": message}, {"role": "assistant", "content": "…"}]
        yield history, ""
        try:
            with self.lock:
                use_rerank = bool(self.settings.rerank_model) if rerank is None else rerank
                result = answer(
                    message,
                    self.searcher(hybrid, use_rerank),
                    self.llm,
                    k=int(top_k),
                    min_score=self.settings.min_score,
                    max_tokens=self.settings.max_tokens,
                )
            text = ""
            for piece in result.stream:
                text += piece
                history[-1] = {"role": "assistant", "content": text}
                yield history, ""
        except UserError as err:
            history[-1] = {"role": "assistant", "content": f"⚠️ {err}"}
            yield history, ""
            return
        except Exception as err:  # an LLM outage must not kill the session
            log.exception("answer failed")
            history[-1] = {"role": "assistant", "content": f"⚠️ the LLM did not answer: {err}"}
            yield history, ""
            return
        if result.sources:
            text += "\n\n" + sources_markdown(result.sources)
        elif not result.found:
            text += "\n\n*No passage in the index is close enough to this question to answer it from.*"
        history[-1] = {"role": "assistant", "content": text}
        yield history, ""


def source_link(source: dict[str, Any]) -> str:
    """A URL for a source: its web address, or the file served by Gradio (PDF viewers honour ``#page=``)."""
    if source.get("url"):
        return str(source["url"])
    link = "/gradio_api/file=" + quote(str(Path(source["source"]).resolve()))
    return link + (f"#page={source['page']}" if source.get("page") else "")


def sources_markdown(sources: list[dict[str, Any]]) -> str:
    """Numbered references matching the answer's ``[n]`` markers, each a link (file + page, or URL) with the
    passage that matched folded beneath it (HTML ``<details>``, which the chat renders as an expandable row).

    Example:
        >>> print(sources_markdown([{"n": 1, "label": "a.pdf, page 2", "source": "/d/a.pdf", "page": 2, "url": None,
        ...                          "snippet": "The Senate shall be composed of two Senators."}]))
        **Sources**
        <details><summary>[1] <a href="/gradio_api/file=/d/a.pdf#page=2">a.pdf, page 2</a></summary>
        <blockquote>The Senate shall be composed of two Senators.</blockquote></details>
        >>> print(sources_markdown([{"n": 1, "label": "a.pdf, page 2: The Senate", "section": "The Senate",
        ...                          "source": "/d/a.pdf", "page": 2, "snippet": "Two Senators."}]).splitlines()[1])
        <details><summary>[1] <a href="/gradio_api/file=/d/a.pdf#page=2">a.pdf, page 2</a>: The Senate</summary>
    """
    refs = []
    for s in sources:
        label = (s.get("title") or s["label"]) if s.get("url") else s["label"]
        # a PDF page links to the page; its section's heading follows as text (a click on it folds the snippet out)
        heading = f": {s['section']}" if s.get("section") and not s.get("url") else ""
        place = label.removesuffix(heading) if heading and label.endswith(heading) else label
        link = f'<a href="{html.escape(source_link(s), quote=True)}">{html.escape(place)}</a>'
        link += html.escape(heading) if place != label else ""
        snippet = html.escape(s.get("snippet") or "")
        refs.append(f"<details><summary>[{s['n']}] {link}</summary>\n<blockquote>{snippet}</blockquote></details>")
    return "**Sources**\n" + "\n".join(refs)


def build_ui(engine: Engine) -> Any:
    """The Blocks app: chat on the left; upload, settings and status on the right."""
    import gradio as gr

    with gr.Blocks(title="ArchivesRAG") as demo:
        gr.Markdown("## ArchivesRAG — chat with your documents")
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Chat", height=520, elem_id="chat")
                box = gr.Textbox(
                    placeholder="Ask a question about the documents…", show_label=False, elem_id="question"
                )
                send = gr.Button("Ask", variant="primary", elem_id="ask")
            with gr.Column(scale=2):
                status = gr.Markdown(engine.status_markdown(), elem_id="status")
                upload = gr.File(label="Add PDFs", file_count="multiple", file_types=[".pdf"], elem_id="upload")
                upload_result = gr.Markdown(elem_id="upload-result")
                top_k = gr.Slider(1, 10, value=engine.settings.top_k, step=1, label="Most sources per answer (top-k)")
                hybrid = gr.Checkbox(value=engine.settings.hybrid, label="Hybrid search (BM25 + dense)")
                rerank = gr.Checkbox(
                    value=bool(engine.settings.rerank_model),
                    label="Rerank with a cross-encoder (better sources, ~1 s)",
                    visible=bool(engine.settings.rerank_model),
                )
        timer = gr.Timer(1.0)
        timer.tick(engine.status_markdown, outputs=status, show_progress="hidden", api_name=False)
        for trigger in (box.submit, send.click):
            trigger(
                engine.respond,
                [box, chat, top_k, hybrid, rerank],
                [chat, box],
                api_name="ask" if trigger == send.click else False,
            )
        upload.upload(engine.add_uploads, upload, upload_result, api_name="upload").then(
            engine.status_markdown, outputs=status, api_name=False
        )
    demo.queue(max_size=engine.settings.max_queue, default_concurrency_limit=2)
    return demo


def launch(engine: Engine, block: bool = True) -> Any:
    """Start serving; with ``share``, a failed tunnel (offline) is one line and local serving goes on."""
    demo = build_ui(engine)
    s = engine.settings
    auth = parse_auth(s.auth)
    if s.share and not auth:
        log.warning(
            "--share makes the app public on the internet and no --auth is set: anyone with the link can "
            "read your documents through it"
        )
    allowed = [str(engine.index_dir)] + ([str(Path(s.data_path).expanduser())] if s.data_path else [])
    kwargs = dict(
        server_name=s.host,
        server_port=s.port,
        auth=auth,
        allowed_paths=allowed,
        blocked_paths=[str(engine.index_dir / "chunks.sqlite"), str(engine.index_dir / "index.faiss")],
        max_file_size=f"{s.max_file_size_mb:g}mb",
        prevent_thread_lock=True,
        ssr_mode=False,
        quiet=True,
    )
    try:
        demo.launch(share=s.share, **kwargs)
    except OSError as err:
        why = str(err).splitlines()[0]
        raise UserError(f"cannot serve on {s.host}:{s.port} ({why}); pass another --port") from None
    except Exception as err:
        if not s.share:
            raise
        log.warning("could not create a share link (%s); serving locally only", str(err).splitlines()[0])
        demo.launch(share=False, **kwargs)
    print(
        f"ArchivesRAG is running at {demo.local_url}" + (f" and {demo.share_url}" if demo.share_url else ""), flush=True
    )
    if block:
        demo.block_thread()
    return demo
