"""python gen_query.py --input_file data.jsonl --output_file query.jsonl [--llm SPEC] [--concurrency 4]

Write one synthetic search query per passage ({"id", "query", "positive": [passage]} lines) with the seed's
prompt and any LLM: --llm openai:gpt-4o | ollama:llama3 | http://HOST:PORT/v1 --model NAME | gguf:PATH | bundled.
Default: GPT-4o when OPENAI_API_KEY is set, else Ollama's llama3 when it answers, else the bundled GGUF.
Rerun the same command after an interruption: passages already answered are skipped.
"""

from __future__ import annotations

import argparse

from archivesrag.errors import run_cli
from archivesrag.querygen import QueryGenArgs, generate


def parse_args() -> QueryGenArgs:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--input_file", required=True, help="passages JSONL ({text, ...} per line)")
    ap.add_argument("--output_file", required=True, help="query JSONL to write (appended; resumable)")
    ap.add_argument("--llm", default=None, help="LLM spec string (see above)")
    ap.add_argument("--model", default=None, help="model name for URL specs, or an override")
    ap.add_argument("--queries_per_passage", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=4, help="requests in flight (and slots of a gguf engine)")
    ap.add_argument("--max_passages", type=int, default=None, help="use a seeded sample of this many passages")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--prompt_file", default=None, help="system prompt to use instead of the seed's")
    shots = ap.add_mutually_exclusive_group()
    shots.add_argument(
        "--few_shot",
        dest="few_shot",
        action="store_true",
        default=None,
        help="add two worked examples (default: on for local models, off for OpenAI)",
    )
    shots.add_argument("--no_few_shot", dest="few_shot", action="store_false")
    ap.add_argument("--min_words", type=int, default=10, help="shortest acceptable query (seed: 10)")
    ap.add_argument(
        "--passage_max_chars",
        type=int,
        default=1000,
        help="ask about the first N characters of each passage, what one index chunk holds (0: all of it)",
    )
    ap.add_argument("--max_attempts", type=int, default=3, help="asks per query before skipping a passage")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max_tokens", type=int, default=96)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per LLM request")
    ap.add_argument("--max_retries", type=int, default=3, help="retries on connection errors, 429, 5xx")
    ap.add_argument(
        "--filter_model",
        default=None,
        help="embedding model for the round-trip filter (off by default); drops queries whose "
        "passage is not in its top --filter_top_k",
    )
    ap.add_argument("--filter_top_k", type=int, default=10)
    ap.add_argument(
        "--easy_margin",
        type=float,
        default=None,
        help="with --filter_model: also drop queries whose passage wins by more than this",
    )
    return QueryGenArgs(**vars(ap.parse_args()))


def main() -> None:
    generate(parse_args())


if __name__ == "__main__":
    run_cli(main)
