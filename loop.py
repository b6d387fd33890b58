"""python loop.py --pdfs my-pdfs/ --llm ollama:llama3 --model_name_or_path BAAI/bge-base-en-v1.5 --workdir work/

The whole pipeline in one command: passages (scrape a site with --config_file, read --pdfs, or take --passages)
-> train/eval split by document -> gen_query.py on both -> mine_hn.py -> run.py -> evaluate.py (base vs
fine-tuned vs BM25 on the held-out documents) -> rag.py index with the winner -> WORKDIR/report.md (+ .json,
loss and nDCG plots, the exact commands, wall times). Rerunning resumes: finished steps are skipped.
"""

from __future__ import annotations

import argparse

from archivesrag.errors import run_cli
from archivesrag.loop import RECIPES, STEPS, LoopArgs, run_loop


def parse_args() -> LoopArgs:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--config_file", help="scrape this site config (init_config.py)")
    src.add_argument("--passages", help="passages JSONL to start from")
    src.add_argument("--pdfs", help="folder of PDFs to start from")
    ap.add_argument("--ocr", choices=["auto", "off", "force"], default="auto",
                    help="--pdfs pages without a text layer: read by OCR (auto), skip (off), OCR every page (force)")
    ap.add_argument("--workdir", required=True, help="every step's files go here")
    ap.add_argument("--llm", help="LLM spec for query generation (default as gen_query.py)")
    ap.add_argument("--model", help="model name for URL LLM specs")
    ap.add_argument("--model_name_or_path", default="bundled", help="base embedding model to fine-tune")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--learning_rate", type=float, default=5e-5)
    ap.add_argument("--train_group_size", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.05,
                    help="InfoNCE temperature; 0.05 measured best on small synthetic sets (run.py: 0.02)")
    ap.add_argument("--recipe", default="contrastive", choices=list(RECIPES),
                    help="training loss: contrastive (the seed's), or distillation from the bundled cross-encoder")
    ap.add_argument("--merge_base", default="auto",
                    help="average the tuned weights with the base's, this being the base's share (0.5), "
                    "auto: try 0.25/0.5/0.75 on the held-out split, none: off")
    ap.add_argument("--queries_per_passage", type=int, default=None,
                    help="default: enough for about 600 training queries, at most 3 per passage")
    ap.add_argument("--no_filter", dest="round_trip_filter", action="store_false",
                    help="keep training queries whose passage the base model does not rank in its top 10")
    ap.add_argument("--eval_fraction", type=float, default=0.2, help="share of documents held out for evaluation")
    ap.add_argument("--max_passages", type=int, help="generate queries for at most this many train passages")
    ap.add_argument("--max_eval_passages", type=int, help="... and this many eval passages (default: --max_passages)")
    ap.add_argument("--concurrency", type=int, default=4, help="LLM requests in flight")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--query_instruction_for_retrieval", default="")
    ap.add_argument("--from", dest="from_step", choices=STEPS, help="redo this step and every later one")
    ap.add_argument("--until", choices=STEPS, help="stop after this step")
    ap.add_argument(
        "--train_arg", action="append", default=[], help="extra run.py flag (repeatable), e.g. --train_arg=--bf16"
    )
    a = ap.parse_args()
    return LoopArgs(
        workdir=a.workdir, config_file=a.config_file, passages=a.passages, pdfs=a.pdfs, ocr=a.ocr, llm=a.llm,
        model=a.model, model_name_or_path=a.model_name_or_path, epochs=a.epochs, batch_size=a.batch_size,
        learning_rate=a.learning_rate, train_group_size=a.train_group_size, temperature=a.temperature,
        recipe=a.recipe, merge_base=a.merge_base, queries_per_passage=a.queries_per_passage,
        round_trip_filter=a.round_trip_filter, eval_fraction=a.eval_fraction,
        max_passages=a.max_passages, max_eval_passages=a.max_eval_passages, concurrency=a.concurrency, seed=a.seed,
        query_instruction_for_retrieval=a.query_instruction_for_retrieval, from_step=a.from_step, until=a.until,
        extra_train_args=a.train_arg,
    )


def main() -> None:
    run_loop(parse_args())


if __name__ == "__main__":
    run_cli(main)
