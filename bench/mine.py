"""python bench/mine.py [--queries 1000] [--pool 5000]

Hard-negative mining wall time, same model (bundled all-MiniLM-L6-v2), same data, same window and count, in one
run: archivesrag's mine_hn.py vs the seed's own tool, FlagEmbedding 1.2.11's hn_mine (in its own venv with
transformers<5, created under .bench/ on first use) vs sentence-transformers' mine_hard_negatives.
Each tool runs as a fresh process, so model loading counts for all three, as it does for a user.
Target (issue 5): archivesrag <= 0.5x hn_mine and <= 1.0x sentence-transformers.

Data: real text, the Python standard library's docstrings (queries = summary lines, positives = bodies, pool =
positives + other docstring paragraphs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from benchutil import ensure_venv, run_timed  # noqa: E402
from corpus import stdlib_pairs, stdlib_paragraphs  # noqa: E402

BENCH = ROOT / ".bench"
RANGE, COUNT = (2, 200), 15

ST_SCRIPT = """
import json, sys
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import mine_hard_negatives
model_dir, qfile, pfile, out, lo, hi, n = sys.argv[1:]
rows = [json.loads(l) for l in open(qfile)]
pool = [json.loads(l)["text"] for l in open(pfile)]
ds = Dataset.from_dict({"query": [r["query"] for r in rows], "positive": [r["pos"][0] for r in rows]})
model = SentenceTransformer(model_dir)
res = mine_hard_negatives(ds, model, corpus=pool, range_min=int(lo), range_max=int(hi), num_negatives=int(n),
                          sampling_strategy="random", batch_size=64, use_faiss=True, output_format="n-tuple",
                          verbose=False)
with open(out, "w") as f:
    for r in res:
        f.write(json.dumps(r) + "\\n")
"""


def ensure_fe_venv() -> Path:
    return ensure_venv(
        "fe-venv",
        ["FlagEmbedding==1.2.11", "transformers>=4.33,<5", "numpy<3", "faiss-cpu", "peft<0.14"],
        "FlagEmbedding.baai_general_embedding.finetune.hn_mine",
    )


def make_data(n_queries: int, n_pool: int, workdir: Path) -> tuple[Path, Path]:
    pairs = stdlib_pairs(n_queries)
    positives = {t for _, t in pairs}
    extra = [t for t in stdlib_paragraphs() if t not in positives][: n_pool - len(pairs)]
    pool = [t for _, t in pairs] + extra
    if len(pairs) < n_queries or len(pool) < n_pool:
        sys.exit(f"not enough stdlib text: {len(pairs)} pairs, {len(pool)} pool passages")
    qfile, pfile = workdir / "query.jsonl", workdir / "pool.jsonl"
    qfile.write_text("".join(json.dumps({"query": q, "pos": [t]}) + "\n" for q, t in pairs))
    pfile.write_text("".join(json.dumps({"text": t}) + "\n" for t in pool))
    return qfile, pfile


def timed(name: str, cmd: list[str]) -> float:
    dt = run_timed(name, cmd, ROOT)
    print(f"{name:<34} {dt:8.1f} s", flush=True)
    return dt


def check_output(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    negs = [r.get("negative") or r.get("neg") or [v for k, v in r.items() if k.startswith("negative")] for r in rows]
    assert all(len(n) == COUNT for n in negs), f"{path}: not {COUNT} negatives per query"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--pool", type=int, default=5000)
    args = ap.parse_args()

    from archivesrag.embedder import bundled_model_path

    model = str(bundled_model_path())
    work = BENCH / "mine"
    work.mkdir(parents=True, exist_ok=True)
    qfile, pfile = make_data(args.queries, args.pool, work)
    fe_py = ensure_fe_venv()
    print(
        f"{args.queries} queries, pool {args.pool} passages, range {RANGE[0]}-{RANGE[1]}, {COUNT} negatives, "
        f"model all-MiniLM-L6-v2, CPU",
        flush=True,
    )
    common = [
        "--model_name_or_path",
        model,
        "--input_file",
        str(qfile),
        "--candidate_pool",
        str(pfile),
        "--range_for_sampling",
        f"{RANGE[0]}-{RANGE[1]}",
        "--negative_number",
        str(COUNT),
    ]
    ours = timed(
        "archivesrag mine_hn.py", [sys.executable, "mine_hn.py", *common, "--output_file", str(work / "ours.jsonl")]
    )
    st = timed(
        "sentence-transformers mine_hard_neg",
        [
            sys.executable,
            "-c",
            ST_SCRIPT,
            model,
            str(qfile),
            str(pfile),
            str(work / "st.jsonl"),
            str(RANGE[0]),
            str(RANGE[1]),
            str(COUNT),
        ],
    )
    fe = timed(
        "FlagEmbedding 1.2.11 hn_mine",
        [
            str(fe_py),
            "-m",
            "FlagEmbedding.baai_general_embedding.finetune.hn_mine",
            *common,
            "--output_file",
            str(work / "fe.jsonl"),
        ],
    )
    check_output(work / "ours.jsonl")
    check_output(work / "fe.jsonl")
    print(f"ratio ours/hn_mine = {ours / fe:.2f}  (target <= 0.5)")
    print(f"ratio ours/sentence-transformers = {ours / st:.2f}  (target <= 1.0)")


if __name__ == "__main__":
    main()
