"""python bench/llm_threads.py [--model 1.5b] [--threads 1,2]

How many llama.cpp threads hold up on a small machine (issue 14): the bundled GGUF answers the same RAG-sized
prompt (~600 tokens, 48 tokens out) with each thread count, first on an idle machine, then while one other process
keeps a core busy (what the embedder, an ingest or another user's job does to a laptop). Prints prompt and
generation tokens/s as llama.cpp itself reports them (its ``timings``), and the wall time per answer.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archivesrag.bundled import bundled_gguf_path  # noqa: E402
from archivesrag.llm import LocalLlamaServer  # noqa: E402

PROMPT = (ROOT / "data" / "sample" / "passages.jsonl").read_text()[:2400]


def busy(stop: float) -> None:
    while time.time() < stop:
        sum(i * i for i in range(10_000))


def measure(url: str, runs: int) -> tuple[float, float, float]:
    prompt, gen, wall = [], [], []
    for i in range(runs):
        t0 = time.perf_counter()
        r = httpx.post(
            url + "/chat/completions",
            json={
                "messages": [{"role": "user", "content": f"{PROMPT}\n({i}) Summarise the sources above."}],
                "max_tokens": 48,
                "temperature": 0,
                "cache_prompt": False,
            },
            timeout=900,
        ).json()
        wall.append(time.perf_counter() - t0)
        prompt.append(r["timings"]["prompt_per_second"])
        gen.append(r["timings"]["predicted_per_second"])
    return statistics.median(prompt), statistics.median(gen), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="1.5b")
    ap.add_argument("--threads", default="1,2,1/2", help="generation threads, or GEN/PROMPT threads")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for threads in args.threads.split(","):
        gen, _, batch = threads.partition("/")
        srv = LocalLlamaServer(
            bundled_gguf_path(args.model), n_ctx=2048, threads=int(gen), batch_threads=int(batch or gen)
        )
        for load in ("idle", "1 busy process"):
            hog = None
            if load != "idle":
                hog = mp.Process(target=busy, args=(time.time() + 3600,), daemon=True)
                hog.start()
            try:
                rows.append((threads, load, *measure(srv.base_url, args.runs)))
            finally:
                if hog is not None:
                    hog.terminate()
            print(rows[-1], flush=True)
        srv.close()
    print(f"\nQwen2.5-Coder-{args.model.upper()} Q4_K_M, {os.cpu_count()} cores, median of {args.runs} answers\n")
    print("| threads (generation/prompt) | machine | prompt tok/s | generation tok/s | s per answer |")
    print("|---|---|---|---|---|")
    for threads, load, p, g, w in rows:
        print(f"| {threads} | {load} | {p:.1f} | {g:.1f} | {w:.1f} |")


if __name__ == "__main__":
    main()
