"""python demo.py ["your question"]

The README's demo on a fresh machine with no network: index the sample documents (data/sample, the US
Constitution) with the bundled all-MiniLM-L6-v2 through the RAG core (the same code as rag.py), then answer a
question from them with numbered sources. The LLM is Ollama's llama3 when an Ollama server answers, else the
bundled Qwen2.5-Coder-0.5B GGUF in-process. The index lives in ~/.cache/archivesrag/demo-index (incremental:
later runs skip the ingest).

This is the foundation's demo; the Gradio app (gradioapp.py) takes its place once it lands.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from archivesrag.embedder import load_embedder
from archivesrag.errors import run_cli
from archivesrag.llm import cache_dir, default_llm_spec, get_llm
from archivesrag.rag import IndexStore, Searcher, answer, ingest

SAMPLE = Path(__file__).resolve().parent / "data" / "sample" / "passages.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("question", nargs="?", default="How long is the term of a senator, and how old must one be?")
    ap.add_argument("--docs", default=str(SAMPLE), help="files or a folder to index (default: the sample)")
    ap.add_argument("--index", default=str(cache_dir() / "demo-index"))
    ap.add_argument("--llm", default=None, help="LLM spec (default: Ollama if it answers, else the bundled GGUF)")
    ap.add_argument("--top_k", type=int, default=3)
    args = ap.parse_args()

    embedder = load_embedder("bundled")
    ingest([args.docs], args.index, embedder, show_progress=False)
    searcher = Searcher(IndexStore.open(args.index), embedder, hybrid=True, rerank_model="bundled")
    result = answer(args.question, searcher, get_llm(args.llm or default_llm_spec()), k=args.top_k)
    print(f"Q: {args.question}\nA: ", end="", flush=True)
    for piece in result.stream:
        print(piece, end="", flush=True)
    print("\n\nSources:")
    for s in result.sources:
        print(f"  [{s['n']}] {s['label']} (score {s['score']:.2f})\n      {s['snippet']}")
    return 0


if __name__ == "__main__":
    run_cli(main)
