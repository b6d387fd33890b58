"""python bench/loop_beir.py DIR [--queries_from 300] [--llm SPEC] [--epochs 3]
python bench/loop_beir.py --make_stdlib .bench/stdlib-beir          # build a BEIR-layout set from real text here

Quality of the loop on any BEIR-layout dataset (DIR/corpus.jsonl, DIR/queries.jsonl, DIR/qrels/test.tsv):
synthetic queries generated from the corpus only (never the dataset's queries) -> mine_hn.py -> run.py ->
evaluate.py on the dataset's own test queries: base vs fine-tuned vs BM25. Each stage runs as its script, as
loop.py runs it. Target (issue 9): the fine-tuned all-MiniLM-L6-v2 gains >= +3 nDCG@10 points over the base on a
scientific-claims-style set (SciFact: download it where the network allows and pass its folder).

--make_stdlib writes a BEIR-layout set from the Python standard library's docstrings (real, human-written text:
queries = a function's one-line summary, relevant document = the rest of its docstring, plus distractor
paragraphs), for machines where no BEIR download is possible.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def make_stdlib(out: Path, n_queries: int = 600, n_distractors: int = 2000) -> None:
    from corpus import stdlib_pairs, stdlib_paragraphs

    pairs = stdlib_pairs(n_queries)
    bodies = {t for _, t in pairs}
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with (out / "corpus.jsonl").open("w") as c, (out / "queries.jsonl").open("w") as q, \
            (out / "qrels" / "test.tsv").open("w") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for i, (query, body) in enumerate(pairs):
            c.write(json.dumps({"_id": f"d{i}", "title": "", "text": body}) + "\n")
            q.write(json.dumps({"_id": f"q{i}", "text": query}) + "\n")
            r.write(f"q{i}\td{i}\t1\n")
        for j, para in enumerate(p for p in stdlib_paragraphs(n_distractors) if p not in bodies):
            c.write(json.dumps({"_id": f"x{j}", "title": "", "text": para}) + "\n")
    print(f"wrote {out}: {len(pairs)} queries")


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run([sys.executable, *cmd], cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("beir_dir", nargs="?")
    ap.add_argument("--make_stdlib", help="write a BEIR-layout set from stdlib docstrings here, then stop")
    ap.add_argument("--queries_from", type=int, default=300, help="corpus passages to generate queries for")
    ap.add_argument("--llm", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--base", default="bundled")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    if args.make_stdlib:
        return make_stdlib(Path(args.make_stdlib))
    if not args.beir_dir:
        ap.error("give a BEIR folder or --make_stdlib DIR")
    beir = Path(args.beir_dir)
    work = ROOT / ".bench" / f"loop-{beir.name}"
    work.mkdir(parents=True, exist_ok=True)
    passages = work / "passages.jsonl"
    with passages.open("w") as f:
        for line in (beir / "corpus.jsonl").open():
            d = json.loads(line)
            text = (d.get("title", "") + "\n" + d["text"]).strip()
            f.write(json.dumps({"id": d["_id"], "text": text}) + "\n")
    gen = ["gen_query.py", "--input_file", str(passages), "--output_file", str(work / "query.jsonl"),
           "--max_passages", str(args.queries_from), "--concurrency", str(args.concurrency)]
    gen += ["--llm", args.llm] if args.llm else []
    gen += ["--model", args.model] if args.model else []
    run(gen)
    run(["mine_hn.py", "--model_name_or_path", args.base, "--input_file", str(work / "query.jsonl"), "--output_file",
         str(work / "mined.jsonl"), "--candidate_pool", str(passages), "--range_for_sampling", "2-200",
         "--negative_number", "15", "--relative_margin", "0.05"])
    run(["run.py", "--output_dir", str(work / "model"), "--model_name_or_path", args.base, "--train_data",
         str(work / "mined.jsonl"), "--learning_rate", "2e-5", "--num_train_epochs", str(args.epochs),
         "--per_device_train_batch_size", "32", "--train_group_size", "2", "--temperature", "0.02",
         "--query_max_len", "64", "--passage_max_len", "256", "--save_strategy", "no", "--report_to", "none",
         "--overwrite_output_dir", "True"])
    run(["evaluate.py", "--beir_dir", str(beir), "--model_name_or_path", args.base, "--model_name_or_path",
         str(work / "model"), "--output", str(work / "eval.json")])
    table = json.loads((work / "eval.json").read_text())["metrics"]
    base, tuned = 100 * table[args.base]["ndcg@10"], 100 * table[str(work / "model")]["ndcg@10"]
    print(f"nDCG@10 on {beir.name}'s test queries: base {base:.2f}, fine-tuned {tuned:.2f}, "
          f"BM25 {100 * table['BM25']['ndcg@10']:.2f}; gain {tuned - base:+.2f} points (target >= +3)")


if __name__ == "__main__":
    main()
