"""python bench/train.py [--pairs 1000] [--epochs 1] [--batch 16] [--seeds 3]

Fine-tuning throughput and quality, same data, model (bundled all-MiniLM-L6-v2), batch, group size, lengths and
temperature, in one run: archivesrag's run.py vs the seed's own tool, FlagEmbedding 1.2.11
(`torchrun -m FlagEmbedding.baai_general_embedding.finetune.run`, in its own venv with transformers<4.46, created
under .bench/ on first use). Both run under `torchrun --nproc_per_node 1` on CPU.
Target (issue 6): samples/s >= 1.0x FlagEmbedding's, and nDCG@10 on held-out documents within 1 point or better.

Data: real text, the Python standard library's docstrings, split by document (80% train / 20% held out), the
train part mined with mine_hn.py. Both models pool by mean (MiniLM's own pooling; FlagEmbedding defaults to CLS,
so we pass --sentence_pooling_method mean to it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from benchutil import BENCH, ensure_venv, run_timed  # noqa: E402
from corpus import stdlib_pairs  # noqa: E402

# FlagEmbedding 1.2.11's BiTrainer.compute_loss predates transformers 4.46's num_items_in_batch argument.
FE_PACKAGES = ["FlagEmbedding==1.2.11", "transformers>=4.33,<4.46", "numpy<3", "faiss-cpu", "peft<0.14"]


def prepare(work: Path, n_pairs: int, model: str) -> tuple[Path, Path]:
    """Write query.jsonl, split it by document, mine the train part; return (mined train, held-out queries)."""
    from archivesrag.evaluation import split_by_document
    from archivesrag.mining import MiningArgs, mine

    queries = work / "query.jsonl"
    queries.write_text("".join(json.dumps({"query": q, "positive": [t]}) + "\n" for q, t in stdlib_pairs(n_pairs)))
    train, held_out = split_by_document(queries, 0.2, seed=1)
    mined = work / "mined.jsonl"
    mine(MiningArgs(model_name_or_path=model, input_file=str(train), output_file=str(mined),
                    range_for_sampling="2-100", negative_number=7, output_keys="flagembedding"))
    return mined, held_out


def samples_per_second(text: str) -> float:
    """HF Trainer's own train_samples_per_second from a run's printed metrics (both tools use HF Trainer)."""
    found = re.findall(r"'train_samples_per_second': '?([0-9.]+)", text)
    if not found:
        sys.exit("no train_samples_per_second in the output")
    return float(found[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=3, help="training seeds; results are averaged (one seed is noisy)")
    args = ap.parse_args()

    from archivesrag.embedder import bundled_model_path
    from archivesrag.evaluation import evaluate_all, load_query_set

    model = str(bundled_model_path())
    work = BENCH / "train"
    work.mkdir(parents=True, exist_ok=True)
    fe_py = ensure_venv("fe-train-venv", FE_PACKAGES, "FlagEmbedding.baai_general_embedding.finetune.run")
    mined, held_out = prepare(work, args.pairs, model)
    n_train = sum(1 for _ in mined.open())
    print(f"{n_train} training examples, batch {args.batch}, group 2, {args.epochs} epoch(s), all-MiniLM-L6-v2, CPU")
    launchers = {
        "archivesrag run.py": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "run.py"],
        "FlagEmbedding 1.2.11": [str(fe_py), "-m", "torch.distributed.run", "--nproc_per_node", "1", "-m",
                                 "FlagEmbedding.baai_general_embedding.finetune.run", "--sentence_pooling_method",
                                 "mean"],
    }
    rates: dict[str, list[float]] = {name: [] for name in launchers}
    scores: dict[str, list[float]] = {name: [] for name in launchers}
    base = bm25 = 0.0
    for seed in range(1, args.seeds + 1):
        common = [
            "--model_name_or_path", model, "--train_data", str(mined), "--learning_rate", "5e-5",
            "--num_train_epochs", str(args.epochs), "--per_device_train_batch_size", str(args.batch),
            "--dataloader_drop_last", "True", "--normlized", "True", "--temperature", "0.02", "--query_max_len",
            "32", "--passage_max_len", "128", "--train_group_size", "2", "--logging_steps", "10", "--save_steps",
            "100000", "--query_instruction_for_retrieval", "", "--report_to", "none", "--seed", str(seed),
        ]
        outputs = {}
        for name, launcher in launchers.items():
            slug = re.sub(r"\W+", "_", name)
            out = work / f"{slug}_seed{seed}"
            log = work / f"{out.name}.log"
            wall = run_timed(name, [*launcher, *common, "--output_dir", str(out), "--overwrite_output_dir", "True"],
                             cwd=ROOT, log=log)
            rates[name].append(samples_per_second(log.read_text()))
            outputs[name] = out
            print(f"seed {seed}: {name:22s} {rates[name][-1]:6.2f} samples/s (HF Trainer), wall {wall:.1f} s",
                  flush=True)
        table = evaluate_all(load_query_set(held_out), [model, *[str(p) for p in outputs.values()]], bm25=True)
        base, bm25 = 100 * table[model]["ndcg@10"], 100 * table["BM25"]["ndcg@10"]
        for name, out in outputs.items():
            scores[name].append(100 * table[str(out)]["ndcg@10"])
            print(f"seed {seed}: {name:22s} nDCG@10 {scores[name][-1]:.2f}", flush=True)

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs)

    print(f"\nnDCG@10 on {sum(1 for _ in held_out.open())} held-out queries (x100): base {base:.2f}, BM25 {bm25:.2f}")
    for name in launchers:
        print(f"  {name:22s} nDCG@10 {mean(scores[name]):.2f}, {mean(rates[name]):.2f} samples/s "
              f"(mean of {args.seeds} seed(s))")
    ours, fe = (mean(scores[n]) for n in launchers)
    r_ours, r_fe = (mean(rates[n]) for n in launchers)
    print(f"ratio samples/s ours/FlagEmbedding = {r_ours / r_fe:.2f}  (target >= 1.0)")
    print(f"nDCG@10 ours - FlagEmbedding = {ours - fe:+.2f} points  (target >= -1.0)")


if __name__ == "__main__":
    main()
