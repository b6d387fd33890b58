"""python bench/gen_query.py [--slots 4] [--passages 12]

Query-generation throughput against one local llama.cpp server (bundled Qwen GGUF) with N parallel slots,
three ways, in one run, each on its own passages (so no run profits from another's prompt cache):
  (a) serial client, the seed's way: one request at a time, no validation;
  (b) archivesrag's gen_query (concurrency = slots, schema, validation, resumable writes);
  (c) the server's ceiling: raw concurrent requests (same prompts and schema), no validation, no writes.
Target (issue 4): (b) >= 0.9 x (c) and (b) >= 2 x (a) when the server has >= 4 slots.
Queries/min counts answers received for (a) and (c); for (b) both the requests it made per minute (the
client's overhead against the same ceiling) and the valid queries it wrote per minute (what a user gets after
validation re-asks and skips, which depend on the model).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from corpus import stdlib_pairs  # noqa: E402

from archivesrag.llm import bundled_gguf_path, get_llm, local_server  # noqa: E402
from archivesrag.querygen import QUERY_SCHEMA, SEED_PROMPT, QueryGenArgs, build_messages, generate  # noqa: E402

MAX_TOKENS = 96


def serial(llm, texts: list[str]) -> tuple[float, float]:
    """(answers/min, completion tokens/min)."""
    before = llm.usage.completion_tokens
    t0 = time.perf_counter()
    for t in texts:
        llm.chat_json(build_messages(t, SEED_PROMPT, True), QUERY_SCHEMA, temperature=0.7, max_tokens=MAX_TOKENS)
    minutes = (time.perf_counter() - t0) / 60
    return len(texts) / minutes, (llm.usage.completion_tokens - before) / minutes


def ceiling(llm, texts: list[str], slots: int) -> tuple[float, float]:
    """(answers/min, completion tokens/min) with ``slots`` requests in flight."""
    async def main() -> None:
        sem = asyncio.Semaphore(slots)

        async def one(t: str) -> None:
            async with sem:
                await llm.achat_json(
                    build_messages(t, SEED_PROMPT, True), QUERY_SCHEMA, temperature=0.7, max_tokens=MAX_TOKENS
                )

        await asyncio.gather(*(one(t) for t in texts))

    before = llm.usage.completion_tokens
    t0 = time.perf_counter()
    asyncio.run(main())
    minutes = (time.perf_counter() - t0) / 60
    return len(texts) / minutes, (llm.usage.completion_tokens - before) / minutes


def ours(url: str, texts: list[str], slots: int) -> tuple[float, float, float, str]:
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "passages.jsonl"
        src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        args = QueryGenArgs(
            input_file=str(src), output_file=str(Path(d) / "q.jsonl"), llm=url, concurrency=slots, max_tokens=MAX_TOKENS
        )
        t0 = time.perf_counter()
        stats = generate(args)
        dt = time.perf_counter() - t0
    requests = stats.written + sum(stats.skipped.values()) + stats.retries
    return requests / dt * 60, stats.written / dt * 60, stats.completion_tokens / dt * 60, stats.summary()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--passages", type=int, default=32, help="passages per run (three disjoint sets)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    texts = [t for _, t in stdlib_pairs(4 * args.passages, min_words=20, max_words=45, prose=True)]
    n = args.passages
    sets = [texts[i * n : (i + 1) * n] for i in range(4)]
    srv = local_server(bundled_gguf_path(), n_ctx=2048, n_parallel=args.slots)
    llm = get_llm(srv.base_url, model="qwen")
    print(f"llama.cpp, bundled Qwen2.5-Coder-0.5B Q4_K_M, {args.slots} slots; {n} passages per run", flush=True)
    ceiling(llm, sets[3][: args.slots], args.slots)  # warm-up: loads weights, caches the shared prompt prefix
    a, a_tok = serial(llm, sets[0])
    print(f"(a) serial client          {a:6.1f} queries/min, {a_tok:6.0f} completion tokens/min", flush=True)
    c, c_tok = ceiling(llm, sets[2], args.slots)
    print(f"(c) server ceiling         {c:6.1f} queries/min, {c_tok:6.0f} completion tokens/min", flush=True)
    b_req, b_valid, b_tok, summary = ours(srv.base_url, sets[1], args.slots)
    print(
        f"(b) archivesrag gen_query  {b_req:6.1f} requests/min, {b_tok:6.0f} completion tokens/min, "
        f"{b_valid:6.1f} valid queries/min   [{summary}]"
    )
    print(f"ratio (b)/(c) = {b_req / c:.2f} in requests, {b_valid / c:.2f} in valid queries  (target >= 0.9)")
    print(f"ratio (b)/(a) = {b_req / a:.2f} in requests, {b_valid / a:.2f} in valid queries  (target >= 2.0)")
    print(f"ratio (b)/(c) in completion tokens/min (server work per minute) = {b_tok / c_tok:.2f}")
    print(f"server ceiling vs serial here: (c)/(a) = {c / a:.2f}")


if __name__ == "__main__":
    main()
