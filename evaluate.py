"""python evaluate.py --model_name_or_path BASE --model_name_or_path ./archivesrag --queries query.eval.jsonl \
    [--corpus passages.jsonl | --beir_dir DIR] [--output eval.json]
python evaluate.py --split_by_document 0.2 --queries query.jsonl     # -> query.train.jsonl + query.eval.jsonl

Prove the fine-tune helped: nDCG@10, MRR@10, Recall@1/10/100 for each model and for BM25, side by side, printed
as one table and written as JSON + Markdown, then each system's nDCG@10 gain over the first model with a paired
bootstrap 95% interval and a verdict ("no measurable difference" when the interval spans 0).
With --split_by_document, first hold out that share of the passages
(and all their queries) so training never sees the evaluation documents; evaluation then runs on the held-out part.
"""

from __future__ import annotations

import argparse

from archivesrag.errors import UserError, run_cli
from archivesrag.evaluation import evaluate_all, load_beir, load_query_set, split_by_document, to_markdown, write_report


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--model_name_or_path",
        action="append",
        default=[],
        help="embedding model to score (repeat for several: base, fine-tuned, ...)",
    )
    ap.add_argument("--queries", help="query.jsonl whose positives are the relevant passages")
    ap.add_argument("--corpus", help="passages.jsonl: more passages to retrieve from (distractors)")
    ap.add_argument("--beir_dir", help="a BEIR-layout dataset instead of --queries/--corpus")
    ap.add_argument("--split", default="test", help="BEIR qrels split")
    ap.add_argument(
        "--split_by_document",
        type=float,
        default=None,
        help="hold out this share of passages (with their queries) from --queries first",
    )
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--query_instruction_for_retrieval", default="", help="prefix for queries, as in run.py")
    ap.add_argument("--no_bm25", action="store_true", help="skip the BM25 baseline")
    ap.add_argument("--output", default="eval.json", help="JSON report (a .md table is written beside it)")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.beir_dir:
        data = load_beir(args.beir_dir, args.split)
    elif args.queries:
        queries = args.queries
        if args.split_by_document is not None:
            train, queries = split_by_document(args.queries, args.split_by_document, args.seed)
            print(f"train on {train}; evaluating on {queries}")
            if not args.model_name_or_path:
                return
        data = load_query_set(queries, args.corpus)
    else:
        raise UserError("give --queries (and optionally --corpus) or --beir_dir")
    if not args.model_name_or_path and args.no_bm25:
        raise UserError("nothing to evaluate: give --model_name_or_path or drop --no_bm25")
    table = evaluate_all(
        data, args.model_name_or_path, bm25=not args.no_bm25, query_instruction=args.query_instruction_for_retrieval
    )
    print(f"{len(data.queries)} queries, {len(data.corpus)} passages (metrics x 100)\n")
    print(to_markdown(table))
    write_report(table, args.output, len(data.queries), len(data.corpus))


if __name__ == "__main__":
    run_cli(main)
