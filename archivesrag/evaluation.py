"""Retrieval evaluation: did the fine-tune help? nDCG@10, MRR@10 and Recall@1/10/100 for any number of embedding
models and for BM25, on the same queries and corpus, side by side.

Evaluation data comes from our own files (a query.jsonl whose positives are the relevant passages, plus an
optional passages.jsonl as the rest of the corpus) or from a BEIR-layout directory (corpus.jsonl, queries.jsonl,
qrels/test.tsv). :func:`split_by_document` holds out a share of the *passages* with all their queries, so the
model is never evaluated on documents it was trained on.

Example:
    >>> data = load_query_set("query.eval.jsonl", "passages.jsonl")
    >>> table = evaluate_all(data, ["bundled", "./archivesrag-model"], bm25=True)
    >>> print(to_markdown(table))
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archivesrag.embedder import load_embedder
from archivesrag.errors import UserError
from archivesrag.records import atomic_write, iter_jsonl, read_passages, read_queries, text_hash, write_jsonl

log = logging.getLogger(__name__)

METRICS = ("ndcg@10", "mrr@10", "recall@1", "recall@10", "recall@100")


@dataclass
class EvalSet:
    """Queries, corpus and graded relevance (qrels: query id -> {doc id: grade})."""

    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]


# ---------------------------------------------------------------- metrics (one query)


def ndcg_at_k(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    """Normalised DCG with linear gains (as BEIR/pytrec_eval compute it).

    Example:
        >>> round(ndcg_at_k(["a", "b", "c"], {"b": 1}), 4)   # 1/log2(3) / 1
        0.6309
    """
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def mrr_at_k(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if rel.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def recall_at_k(ranked: list[str], rel: dict[str, int], k: int) -> float:
    relevant = {d for d, g in rel.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def per_query_ndcg(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> np.ndarray:
    """nDCG@10 of each judged query, in ``qrels`` order (the unit a paired bootstrap resamples)."""
    return np.array([ndcg_at_k(rankings.get(q, []), rel, 10) for q, rel in qrels.items()])


def paired_bootstrap(base: np.ndarray, other: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean difference ``other - base`` over queries and its 95% percentile interval from ``n`` resamples of the
    queries (the same queries for both systems, so the noise of which queries were drawn cancels).

    Example:
        >>> paired_bootstrap(np.array([0.5, 0.6, 0.7]), np.array([0.6, 0.7, 0.8]))
        (0.1, 0.1, 0.1)
    """
    diff = other - base
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return round(float(diff.mean()), 6), round(float(low), 6), round(float(high), 6)


def gain_verdict(diff: float, low: float, high: float) -> str:
    """How a person should read a gain: better / worse only when the 95% interval excludes 0."""
    if low > 0:
        return "better than the base"
    if high < 0:
        return "worse than the base"
    return "no measurable difference"


def score_rankings(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean of every metric in :data:`METRICS` over the queries that have relevance judgements."""
    per = {m: [] for m in METRICS}
    for qid, rel in qrels.items():
        ranked = rankings.get(qid, [])
        per["ndcg@10"].append(ndcg_at_k(ranked, rel, 10))
        per["mrr@10"].append(mrr_at_k(ranked, rel, 10))
        for k in (1, 10, 100):
            per[f"recall@{k}"].append(recall_at_k(ranked, rel, k))
    return {m: float(np.mean(v)) if v else 0.0 for m, v in per.items()}


# ---------------------------------------------------------------- data


def load_query_set(queries_file: str | Path, corpus_file: str | Path | None = None) -> EvalSet:
    """Our files: each query's positives are relevant (grade 1); the corpus is the positives plus ``corpus_file``."""
    rows = read_queries(queries_file)
    corpus = {text_hash(p): p for r in rows for p in r.positive}
    if corpus_file:
        corpus.update({text_hash(p.text): p.text for p in read_passages(corpus_file)})
    queries, qrels = {}, {}
    for i, r in enumerate(rows):
        qid = f"q{i}"
        queries[qid] = r.query
        qrels[qid] = {text_hash(p): 1 for p in r.positive}
    return EvalSet(queries, corpus, qrels)


def load_beir(directory: str | Path, split: str = "test") -> EvalSet:
    """A BEIR-layout dataset: corpus.jsonl ({_id, title, text}), queries.jsonl ({_id, text}), qrels/<split>.tsv."""
    d = Path(directory)
    qrels_path = d / "qrels" / f"{split}.tsv"
    for needed in (d / "corpus.jsonl", d / "queries.jsonl", qrels_path):
        if not needed.is_file():
            raise UserError(f"{needed}: missing; a BEIR directory has corpus.jsonl, queries.jsonl, qrels/{split}.tsv")
    corpus = {}
    for where, obj in iter_jsonl(d / "corpus.jsonl"):
        if "_id" not in obj or "text" not in obj:
            raise UserError(f"{where}: a BEIR corpus line needs '_id' and 'text'")
        corpus[str(obj["_id"])] = f"{obj.get('title') or ''} {obj['text']}".strip()
    all_queries = {str(o["_id"]): str(o["text"]) for _, o in iter_jsonl(d / "queries.jsonl") if "_id" in o}
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split("\t")
        if lineno == 1 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        if len(parts) < 3:
            raise UserError(f"{qrels_path}:{lineno}: expected query-id<TAB>corpus-id<TAB>score")
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = {q: all_queries[q] for q in qrels if q in all_queries}
    return EvalSet(queries, corpus, {q: r for q, r in qrels.items() if q in queries})


def split_by_document(queries_file: str | Path, fraction: float, seed: int = 42) -> tuple[Path, Path]:
    """Hold out ``fraction`` of the distinct positive passages with every query that uses them.

    Writes ``<stem>.train.jsonl`` and ``<stem>.eval.jsonl`` next to the input and returns their paths. A query
    with several positives goes to eval if any of them is held out, so no eval passage is ever trained on.
    """
    if not 0 < fraction < 1:
        raise UserError(f"--split_by_document {fraction}: give a fraction between 0 and 1, e.g. 0.2")
    rows = read_queries(queries_file)
    docs = sorted({p for r in rows for p in r.positive})
    held = set(random.Random(seed).sample(docs, max(1, round(fraction * len(docs)))))
    train = [r for r in rows if not held & set(r.positive)]
    evals = [r for r in rows if held & set(r.positive)]
    src = Path(queries_file)
    train_path, eval_path = src.with_suffix(".train.jsonl"), src.with_suffix(".eval.jsonl")
    write_jsonl(train_path, train)
    write_jsonl(eval_path, evals)
    log.info(
        "split %s by document: %d passages held out; %d train / %d eval queries", src, len(held), len(train), len(evals)
    )
    return train_path, eval_path


# ---------------------------------------------------------------- retrieval


def dense_rankings(
    data: EvalSet, model: str, query_instruction: str = "", k: int = 100, batch_size: int | None = None
) -> dict[str, list[str]]:
    """Top-k corpus ids per query by cosine similarity under ``model``."""
    import faiss

    emb = load_embedder(model, query_instruction=query_instruction, batch_size=batch_size)
    doc_ids = list(data.corpus)
    index = faiss.IndexFlatIP(emb.dim)
    index.add(emb.encode_passages([data.corpus[d] for d in doc_ids], show_progress=True))
    qids = list(data.queries)
    _, idx = index.search(emb.encode_queries([data.queries[q] for q in qids]), min(k, len(doc_ids)))
    return {q: [doc_ids[i] for i in row if i >= 0] for q, row in zip(qids, idx, strict=True)}


def bm25_rankings(data: EvalSet, k: int = 100) -> dict[str, list[str]]:
    import bm25s

    doc_ids = list(data.corpus)
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize([data.corpus[d] for d in doc_ids], stopwords="en", show_progress=False), show_progress=False
    )
    qids = list(data.queries)
    docs, _ = retriever.retrieve(
        bm25s.tokenize([data.queries[q] for q in qids], stopwords="en", show_progress=False),
        k=min(k, len(doc_ids)),
        show_progress=False,
    )
    return {q: [doc_ids[int(i)] for i in row] for q, row in zip(qids, docs, strict=True)}


def evaluate_all(
    data: EvalSet, models: list[str], bm25: bool = True, query_instruction: str = ""
) -> dict[str, dict[str, float]]:
    """Metrics per system: each model by name, then ``BM25``. Every system after the first (the base) also gets
    ``ndcg@10_gain`` with its paired-bootstrap 95% interval (``ndcg@10_gain_low``/``_high``) and a ``verdict``."""
    if not data.qrels:
        raise UserError("no queries with relevance judgements to evaluate")
    rankings = {m: dense_rankings(data, m, query_instruction) for m in models}
    if bm25:
        rankings["BM25"] = bm25_rankings(data)
    table: dict[str, dict] = {name: score_rankings(r, data.qrels) for name, r in rankings.items()}
    names = list(rankings)
    base = per_query_ndcg(rankings[names[0]], data.qrels)
    for name in names[1:]:
        diff, low, high = paired_bootstrap(base, per_query_ndcg(rankings[name], data.qrels))
        table[name].update(
            {
                "ndcg@10_gain": diff,
                "ndcg@10_gain_low": low,
                "ndcg@10_gain_high": high,
                "verdict": gain_verdict(diff, low, high),
            }
        )
    return table


def to_markdown(table: dict[str, dict]) -> str:
    """The metrics table, then each system's nDCG@10 gain over the first with its 95% interval and verdict."""
    head = "| system | " + " | ".join(METRICS) + " |\n|---|" + "---:|" * len(METRICS) + "\n"
    text = head + "".join(
        f"| {name} | " + " | ".join(f"{100 * row[m]:.2f}" for m in METRICS) + " |\n" for name, row in table.items()
    )
    gains = [(name, row) for name, row in table.items() if "ndcg@10_gain" in row]
    if gains:
        base = next(iter(table))
        text += f"\n| nDCG@10 vs {base} | gain | 95% interval (paired bootstrap) | verdict |\n|---|---:|---|---|\n"
        text += "".join(
            f"| {name} | {100 * row['ndcg@10_gain']:+.2f} | [{100 * row['ndcg@10_gain_low']:+.2f}, "
            f"{100 * row['ndcg@10_gain_high']:+.2f}] | {row['verdict']} |\n"
            for name, row in gains
        )
    return text


def write_report(table: dict[str, dict[str, float]], output: str | Path, n_queries: int, n_docs: int) -> None:
    out = Path(output)
    with atomic_write(out) as f:
        json.dump({"queries": n_queries, "corpus": n_docs, "metrics": table}, f, indent=2)
    with atomic_write(out.with_suffix(".md")) as f:
        f.write(f"{n_queries} queries, {n_docs} passages (metrics x 100)\n\n" + to_markdown(table))
