"""python rag.py ingest --index my-index [--embedding_model M] FILES_OR_DIRS...
python rag.py ask --index my-index [--llm SPEC] ["question"]

Build a persistent RAG index from PDFs, passages JSONL (scrape.py output), .txt/.md/.html files, then ask it
questions: answers stream with numbered sources (file + page, or url). Without a question, `ask` opens a prompt.
Re-ingesting is incremental: unchanged files are skipped, changed files replace their chunks.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from archivesrag.embedder import default_embedding_model, load_embedder
from archivesrag.errors import UserError, run_cli
from archivesrag.llm import default_llm_spec, get_llm
from archivesrag.rag import IndexStore, Searcher, answer, ingest
from archivesrag.rag.chain import RELEVANCE_MARGIN


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    ing = sub.add_parser("ingest", help="add files to an index (created on first use)")
    ing.add_argument("--index", required=True, help="index directory")
    ing.add_argument(
        "--embedding_model",
        default=None,
        help="model dir (e.g. run.py output), HF id, or 'bundled'; default: the index's model, else "
        "mixedbread-ai/mxbai-embed-large-v1 when available, else bundled",
    )
    ing.add_argument("--chunk_size", type=int, default=1000, help="characters per chunk")
    ing.add_argument("--chunk_overlap", type=int, default=150)
    ing.add_argument(
        "--batch_chunks",
        type=int,
        default=256,
        help="chunks embedded at once across files (lower it if memory is short)",
    )
    ing.add_argument(
        "--index_type",
        choices=["auto", "flat", "hnsw"],
        default=None,
        help="flat: exact search; hnsw: approximate, <1 ms at 100k chunks; auto (new indexes): flat below 50k "
        "chunks, hnsw above. Kept in the index once set.",
    )
    ing.add_argument(
        "--ocr",
        choices=["auto", "off", "force"],
        default="auto",
        help="PDF pages without a text layer: auto reads them by OCR (bundled PP-OCR models), off skips them, "
        "force OCRs every page",
    )
    ing.add_argument("paths", nargs="+", help="files or directories")
    ask = sub.add_parser("ask", help="answer a question from an index")
    ask.add_argument("--index", required=True)
    ask.add_argument("--embedding_model", default=None, help="default: the model that built the index")
    ask.add_argument(
        "--llm",
        default=None,
        help="LLM spec; default: ollama:llama3 if Ollama answers, else bundled (Qwen2.5-Coder-1.5B; bundled:0.5b "
        "is faster and weaker)",
    )
    ask.add_argument("--model", default=None, help="model name for URL specs")
    ask.add_argument(
        "--top_k",
        type=int,
        default=3,
        help=f"most sources given to the LLM (with a reranker, those within {RELEVANCE_MARGIN:g} logits of the best)",
    )
    ask.add_argument("--mmr", action="store_true", help="diversify sources (maximal marginal relevance)")
    ask.add_argument(
        "--hybrid",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fuse BM25 with dense search (reciprocal rank fusion) before reranking; on by default: the gold page "
        "is among 3 sources for 94%% of bench/answers.py's questions with it, 89%% without",
    )
    ask.add_argument(
        "--rerank_model",
        default="bundled",
        help="cross-encoder that reorders 30 candidates: 'bundled' (ms-marco-MiniLM-L-12-v2 INT8 ONNX, ~1 s on a "
        "CPU), a sentence-transformers CrossEncoder dir or HF id, or 'none'",
    )
    ask.add_argument(
        "--min_score", type=float, default=0.25, help="below this best cosine score, say nothing relevant was found"
    )
    ask.add_argument("--json", action="store_true", help="print {answer, sources} as JSON")
    ask.add_argument("question", nargs="?", help="omit for an interactive prompt")
    return ap.parse_args(argv)


def run_ingest(args: argparse.Namespace) -> int:
    name = args.embedding_model
    if name is None:
        try:
            name = IndexStore.open(args.index, create=False).model_name
        except UserError:
            name = default_embedding_model()
    report = ingest(
        args.paths,
        args.index,
        lambda: load_embedder(name),  # loads while the first files are parsed in a worker
        args.chunk_size,
        args.chunk_overlap,
        batch_chunks=args.batch_chunks,
        index_type=args.index_type,
        ocr=args.ocr,
    )
    for source, why in report.failed.items():
        print(f"skipped {source}: {why}", file=sys.stderr)
    print(report.summary())
    return 0


def print_answer(result, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "question": result.question,
                    "answer": "".join(result.stream),
                    "found": result.found,
                    "mode": result.mode,
                    "cited": result.cited,
                    "sources": result.sources,
                },
                ensure_ascii=False,
            )
        )
        return
    for piece in result.stream:
        print(piece, end="", flush=True)
    print()
    if result.sources:
        print("\nSources:")
        for s in result.sources:
            print(f"  [{s['n']}] {s['label']}  (score {s['score']:.2f})")
            print(textwrap.fill(s["snippet"], width=100, initial_indent="      ", subsequent_indent="      "))


def run_ask(args: argparse.Namespace) -> int:
    store = IndexStore.open(args.index, model_name=args.embedding_model, create=False)
    searcher = Searcher(
        store,
        load_embedder(store.model_name),
        hybrid=args.hybrid,
        mmr=args.mmr,
        rerank_model=None if args.rerank_model.lower() in ("none", "") else args.rerank_model,
    )
    llm = get_llm(args.llm or default_llm_spec(), args.model)
    questions = [args.question] if args.question else None
    if questions is None:
        print(f"Index {args.index}: {store.count()} chunks. Ask a question (empty line or Ctrl-D to quit).")
    while True:
        if questions is not None:
            if not questions:
                return 0
            q = questions.pop()
        else:
            try:
                q = input("\n> ").strip()
            except EOFError:
                return 0
            if not q:
                return 0
        print_answer(answer(q, searcher, llm, k=args.top_k, min_score=args.min_score), args.json)


def main() -> int:
    args = parse_args()
    return run_ingest(args) if args.command == "ingest" else run_ask(args)


if __name__ == "__main__":
    run_cli(main)
