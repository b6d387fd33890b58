"""python demo.py ["your question"]

The README's demo on a fresh machine with no network: embed the sample passages (data/sample) with the bundled
all-MiniLM-L6-v2, retrieve the best ones for a question, and let an LLM answer from them with numbered sources.
The LLM is Ollama's llama3 when an Ollama server answers, else the bundled Qwen2.5-Coder-0.5B GGUF in-process.

This is the smoke demo of the foundation; the Gradio app (gradioapp.py) replaces it once it lands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archivesrag.embedder import load_embedder
from archivesrag.errors import run_cli
from archivesrag.llm import default_llm_spec, get_llm
from archivesrag.records import read_passages

SAMPLE = Path(__file__).resolve().parent / "data" / "sample" / "passages.jsonl"
SYSTEM = (
    "Answer the question using only the numbered sources. Cite the sources you use as [n]. "
    "If the sources do not contain the answer, say you do not know."
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("question", nargs="?", default="How long is the term of a senator, and how old must one be?")
    ap.add_argument("--passages", default=str(SAMPLE), help="passages JSONL to search (default: the sample)")
    ap.add_argument("--embedding_model", default="bundled", help="model dir, HF id, or 'bundled'")
    ap.add_argument("--llm", default=None, help="LLM spec (default: Ollama if it answers, else the bundled GGUF)")
    ap.add_argument("--top_k", type=int, default=2)
    args = ap.parse_args()

    passages = read_passages(args.passages)
    emb = load_embedder(args.embedding_model)
    scores = (emb.encode_queries([args.question]) @ emb.encode_passages([p.text for p in passages]).T)[0]
    best = scores.argsort()[::-1][: args.top_k]
    context = "\n\n".join(f"[{i + 1}] {passages[j].text}" for i, j in enumerate(best))

    llm = get_llm(args.llm or default_llm_spec(), temperature=0, max_tokens=200, system=SYSTEM)
    print(f"Q: {args.question}\nA: ", end="", flush=True)
    for piece in llm.stream(f"Sources:\n{context}\n\nQuestion: {args.question}"):
        print(piece, end="", flush=True)
    print("\n\nSources:")
    for i, j in enumerate(best):
        print(f"  [{i + 1}] {passages[j].title or passages[j].source} (score {scores[j]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
