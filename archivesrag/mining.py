"""Hard-negative mining: for each query, sample negatives from a window of its nearest passages.

Same meaning as the seed's tool (FlagEmbedding's ``hn_mine``): embed the pool and the queries, retrieve the top
``end`` passages for every query, keep ranks ``start:end`` (0-based slice, so ``2-200`` skips the two nearest),
drop the positives and the query itself, sample ``negative_number`` of what is left, and top up from random pool
passages when the window runs short. What we add:

* a false-negative guard (NV-Retriever's TopK-PercPos): ``relative_margin`` drops candidates scoring above
  ``(1 - margin) * positive_score``; ``max_score`` is an absolute cap. Off by default, as in the seed;
* one exact faiss search for all queries (hn_mine searches in batches of 64, 10-20x slower on CPU), sharded
  over every visible GPU with ``use_gpu_for_searching``;
* deterministic sampling per query (``seed``), and diagnostics (score distributions, what each filter removed);
* an embedding cache keyed by model + text hash, so re-mining with other settings re-encodes nothing.

Example:
    >>> stats = mine(MiningArgs(model_name_or_path="bundled", input_file="query.jsonl",
    ...                         output_file="query_minedHN.jsonl", range_for_sampling="2-200", negative_number=15))
    >>> stats.topped_up
    0
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from archivesrag.embedder import Embedder, load_embedder, resolve_model
from archivesrag.errors import UserError
from archivesrag.records import (
    TrainingExample,
    atomic_write,
    read_passages,
    read_training_examples,
    text_hash,
    write_jsonl,
)

log = logging.getLogger(__name__)


@dataclass
class MiningArgs:
    """mine_hn.py's flags: the seed's names first, then ours."""

    model_name_or_path: str = field(
        default="BAAI/bge-base-en-v1.5", metadata={"help": "embedding model: local dir, HF id, or 'bundled'"}
    )
    input_file: str = field(default="query.jsonl", metadata={"help": "query.jsonl: {query, positive[, negative]}"})
    output_file: str = field(default="query_minedHN.jsonl", metadata={"help": "where to write the mined examples"})
    candidate_pool: str | None = field(
        default=None,
        metadata={"help": "JSONL of {text} to retrieve from; default: every positive/negative in input_file"},
    )
    range_for_sampling: str = field(
        default="10-210", metadata={"help": "rank window START-END (0-based slice of the top END); 2-200 skips 2"}
    )
    negative_number: int = field(default=15, metadata={"help": "negatives per query"})
    use_gpu_for_searching: bool = field(default=False, metadata={"help": "search with faiss-gpu (all GPUs)"})
    query_instruction_for_retrieval: str = field(default="", metadata={"help": "prefix added to every query"})
    batch_size: int | None = field(default=None, metadata={"help": "encode batch size (default: 32 on CPU, 64 on GPU)"})
    fp16: bool = field(default=False, metadata={"help": "fp16 encoding (GPU only)"})
    max_seq_length: int | None = field(default=None, metadata={"help": "truncate texts to this many tokens"})
    seed: int = field(default=42, metadata={"help": "random seed: same seed, same negatives"})
    embedding_cache: str | None = field(
        default=None, metadata={"help": "dir to reuse passage embeddings across runs (keyed by model + text)"}
    )
    relative_margin: float | None = field(
        default=None, metadata={"help": "drop candidates scoring above (1-margin) x positive score; 0.05 advised"}
    )
    max_score: float | None = field(default=None, metadata={"help": "drop candidates scoring above this"})
    scores: bool = field(default=False, metadata={"help": "write pos_scores/neg_scores into each line"})
    teacher_model: str | None = field(
        default=None,
        metadata={
            "help": "cross-encoder whose relevance scores become pos_scores/neg_scores (distillation targets for "
            "run.py): 'bundled' (ms-marco-MiniLM-L-12-v2 ONNX), a CrossEncoder dir or an HF id"
        },
    )
    teacher_margin: float | None = field(
        default=None,
        metadata={
            "help": "with --teacher_model: drop negatives the teacher scores above its score for the positive minus "
            "this (unlabelled positives, RocketQA's denoising; 0 drops those it ranks above the positive)"
        },
    )
    output_keys: str = field(
        default="seed", metadata={"help": "'seed' (positive/negative) or 'flagembedding' (pos/neg)"}
    )


@dataclass
class MiningStats:
    """What a run did; logged at the end and returned for tests and reports."""

    queries: int = 0
    pool: int = 0
    removed_positive: int = 0
    removed_margin: int = 0
    removed_max_score: int = 0
    removed_teacher: int = 0
    topped_up: int = 0
    pos_scores: list[float] = field(default_factory=list)
    neg_scores: list[float] = field(default_factory=list)

    def summary(self) -> str:
        def dist(xs: list[float]) -> str:
            return f"min {min(xs):.3f} / mean {float(np.mean(xs)):.3f} / max {max(xs):.3f}" if xs else "n/a"

        return (
            f"{self.queries} queries, pool {self.pool}; removed as positive/query {self.removed_positive}, "
            f"by margin {self.removed_margin}, by max_score {self.removed_max_score}, "
            f"by the teacher {self.removed_teacher}; "
            f"{self.topped_up} queries topped up at random; positive scores {dist(self.pos_scores)}; "
            f"negative scores {dist(self.neg_scores)}"
        )


def parse_range(text: str) -> tuple[int, int]:
    """``"2-200"`` -> ``(2, 200)``; a bad window is a one-line error."""
    try:
        start, end = (int(x) for x in text.split("-"))
    except ValueError:
        raise UserError(f"--range_for_sampling {text!r}: write START-END, e.g. 2-200") from None
    if start < 0 or end <= start:
        raise UserError(f"--range_for_sampling {text!r}: need 0 <= START < END")
    return start, end


def dedup(texts: list[str]) -> list[str]:
    """Unique texts in first-seen order (hn_mine uses a set, whose order changes from run to run)."""
    return list(dict.fromkeys(texts))


class EmbeddingCache:
    """Passage vectors on disk, keyed by (model, max length, precision) and text hash; numpy files, never pickles.

    Layout: ``DIR/<key>/shard-N.npy`` + ``shard-N.keys`` (one text hash a line). New vectors go to a new shard,
    written atomically, so a killed run loses at most the shard it was writing.
    """

    def __init__(self, root: str | Path, model_name: str, max_seq_length: int, precision: str = "fp32") -> None:
        resolved = Path(resolve_model(model_name))
        # "-weights": bf16 vectors cached before the switch from autocast differ slightly; never mix the two.
        tag = f"{precision}-weights" if precision == "bf16" else precision
        ident = f"{resolved.resolve() if resolved.exists() else model_name}|{max_seq_length}|{tag}"
        weights = sorted(resolved.glob("*.safetensors")) + sorted(resolved.glob("*.bin")) if resolved.exists() else []
        ident += "".join(f"|{w.name}:{w.stat().st_size}:{w.stat().st_mtime_ns}" for w in weights)
        self.dir = Path(root) / hashlib.sha256(ident.encode()).hexdigest()[:16]
        self.dir.mkdir(parents=True, exist_ok=True)
        self._vecs: dict[str, np.ndarray] = {}
        for keys_file in sorted(self.dir.glob("shard-*.keys")):
            npy = keys_file.with_suffix(".npy")
            if npy.exists():
                vecs = np.load(npy, allow_pickle=False)
                self._vecs.update(zip(keys_file.read_text().split(), vecs, strict=True))

    def encode(self, embedder: Embedder, texts: list[str]) -> np.ndarray:
        """Vectors for ``texts``: cached rows where known, the rest encoded now and stored."""
        keys = [text_hash(t) for t in texts]
        missing = dedup([k for k in keys if k not in self._vecs])
        log.info("embedding cache: %d of %d passages cached", len(texts) - len(missing), len(texts))
        if missing:
            by_key = dict(zip(keys, texts, strict=True))
            new = embedder.encode_passages([by_key[k] for k in missing], show_progress=True)
            self._store(missing, new)
        return np.stack([self._vecs[k] for k in keys]).astype(np.float32)

    def _store(self, keys: list[str], vecs: np.ndarray) -> None:
        n = len(list(self.dir.glob("shard-*.keys")))
        with atomic_write(self.dir / f"shard-{n:05d}.npy", "wb") as f:
            np.save(f, vecs, allow_pickle=False)
        with atomic_write(self.dir / f"shard-{n:05d}.keys") as f:
            f.write("\n".join(keys) + "\n")
        self._vecs.update(zip(keys, vecs, strict=True))


def require_faiss_gpu() -> None:
    """Fail before any encoding when GPU search is asked for but faiss has no GPU support here."""
    import faiss

    if not hasattr(faiss, "index_cpu_to_all_gpus") or faiss.get_num_gpus() == 0:
        raise UserError("--use_gpu_for_searching: no faiss GPU support here; install faiss-gpu-cu12 on a GPU node")


def search(pool_vecs: np.ndarray, query_vecs: np.ndarray, k: int, use_gpu: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k for all queries in one call (sharded over all GPUs when asked)."""
    import faiss

    index = faiss.IndexFlatIP(pool_vecs.shape[1])
    if use_gpu:
        require_faiss_gpu()
        co = faiss.GpuMultipleClonerOptions()
        co.shard = True
        index = faiss.index_cpu_to_all_gpus(index, co=co)
    index.add(pool_vecs)
    return index.search(query_vecs, k)


def select_negatives(
    ex: TrainingExample,
    ranked: list[tuple[int, float]],
    pool: list[str],
    pos_score: float,
    args: MiningArgs,
    rng: random.Random,
    stats: MiningStats,
) -> list[tuple[str, float | None]]:
    """Filter one query's window and sample its negatives (topping up at random when short)."""
    forbidden = set(ex.positive) | {ex.query}
    candidates: list[tuple[str, float | None]] = []
    for idx, score in ranked:
        text = pool[idx]
        if text in forbidden:
            stats.removed_positive += 1
        elif args.max_score is not None and score > args.max_score:
            stats.removed_max_score += 1
        elif args.relative_margin is not None and score > (1 - args.relative_margin) * pos_score:
            stats.removed_margin += 1
        else:
            candidates.append((text, score))
    if len(candidates) > args.negative_number:
        candidates = rng.sample(candidates, args.negative_number)
    if len(candidates) < args.negative_number:
        stats.topped_up += 1
        taken = forbidden | {t for t, _ in candidates}
        order = rng.sample(range(len(pool)), len(pool))
        extra = [pool[i] for i in order if pool[i] not in taken][: args.negative_number - len(candidates)]
        candidates += [(t, None) for t in extra]
    return candidates


def positive_vectors(
    examples: list[TrainingExample], pool: list[str], pool_vecs: np.ndarray, emb: Embedder
) -> dict[str, np.ndarray]:
    """Vector of every positive: its pool row, or (outside a given candidate_pool) encoded in one batch."""
    vecs = {t: pool_vecs[i] for i, t in enumerate(pool)}
    outside = dedup([p for ex in examples for p in ex.positive if p not in vecs])
    vecs.update(zip(outside, emb.encode_passages(outside), strict=True))
    return vecs


def teacher_scores(examples: list[TrainingExample], teacher: str, batch_size: int | None = None) -> None:
    """Score every (query, positive) and (query, negative) pair with a cross-encoder, in place: GPL's
    pseudo-labels, FlagEmbedding's ``pos_scores``/``neg_scores`` keys, aligned with ``positive``/``negative``.
    ``batch_size`` None: the model's own (one pair per run for an ONNX model, see :mod:`archivesrag.reranker`)."""
    from tqdm import tqdm

    from archivesrag.reranker import load_reranker

    model = load_reranker(teacher)
    pairs = [(ex.query, p) for ex in examples for p in (*ex.positive, *ex.negative)]
    scores, done = [], 0
    with tqdm(total=len(pairs), desc="teacher scores", unit="pair") as bar:
        for start in range(0, len(pairs), 512):
            part = pairs[start : start + 512]
            scores.extend(model.score_pairs(part, batch_size).tolist())
            bar.update(len(part))
    for ex in examples:
        n_pos, n_neg = len(ex.positive), len(ex.negative)
        ex.pos_scores = [round(x, 4) for x in scores[done : done + n_pos]]
        ex.neg_scores = [round(x, 4) for x in scores[done + n_pos : done + n_pos + n_neg]]
        done += n_pos + n_neg
    log.info("teacher %s scored %d pairs", model.name, len(pairs))


def drop_teacher_positives(examples: list[TrainingExample], margin: float) -> int:
    """Drop, in place, the negatives the teacher scores above ``max(pos_scores) - margin``: passages a stronger
    judge finds as relevant as the labelled one, which in a small domain corpus are often unlabelled answers
    (another FAQ entry saying the same thing). Contrastive training would push the query away from them. A line
    keeps its lowest-scored negative when the teacher doubts all of them, so it still trains.

    Returns:
        How many negatives were dropped.

    Example:
        >>> ex = TrainingExample("q", ["p"], ["a", "b"], pos_scores=[2.0], neg_scores=[3.0, -1.0])
        >>> drop_teacher_positives([ex], 0.0), ex.negative
        (1, ['b'])
    """
    dropped = 0
    for ex in examples:
        if not ex.neg_scores or not ex.pos_scores:
            continue
        bar = max(ex.pos_scores) - margin
        keep = [i for i, s in enumerate(ex.neg_scores) if s < bar] or [int(np.argmin(ex.neg_scores))]
        dropped += len(ex.negative) - len(keep)
        ex.negative = [ex.negative[i] for i in keep]
        ex.neg_scores = [ex.neg_scores[i] for i in keep]
    return dropped


def mine(args: MiningArgs, embedder: Embedder | None = None) -> MiningStats:
    """Run the whole mining stage (see module docstring); writes ``args.output_file`` atomically."""
    start, end = parse_range(args.range_for_sampling)
    if args.output_keys not in ("seed", "flagembedding"):
        raise UserError(f"--output_keys {args.output_keys!r}: use 'seed' or 'flagembedding'")
    if args.teacher_margin is not None and not args.teacher_model:
        raise UserError("--teacher_margin needs --teacher_model (bundled, a CrossEncoder dir or an HF id)")
    if args.use_gpu_for_searching:
        require_faiss_gpu()
    examples = read_training_examples(args.input_file)
    if args.candidate_pool:
        pool = dedup([p.text for p in read_passages(args.candidate_pool)])
    else:
        pool = dedup([t for ex in examples for t in (*ex.positive, *ex.negative)])
    if start >= len(pool):
        raise UserError(
            f"--range_for_sampling {args.range_for_sampling}: the pool has only {len(pool)} passages; "
            f"use a window inside it, e.g. 0-{len(pool)}, or add --candidate_pool"
        )
    if end > len(pool):
        log.warning("range end %d is beyond the pool of %d passages; using %d", end, len(pool), len(pool))
        end = len(pool)

    emb = embedder or load_embedder(
        args.model_name_or_path,
        query_instruction=args.query_instruction_for_retrieval,
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        fp16=args.fp16,
    )
    if args.embedding_cache:
        pool_vecs = EmbeddingCache(
            args.embedding_cache, args.model_name_or_path, emb.max_seq_length, emb.precision
        ).encode(emb, pool)
    else:
        pool_vecs = emb.encode_passages(pool, show_progress=True)
    query_vecs = emb.encode_queries([ex.query for ex in examples], show_progress=True)
    scores, idxs = search(pool_vecs, query_vecs, end, args.use_gpu_for_searching)
    pos_vecs = positive_vectors(examples, pool, pool_vecs, emb)

    stats = MiningStats(queries=len(examples), pool=len(pool))
    out = []
    for qi, ex in enumerate(examples):
        pos_scores = [float(pos_vecs[p] @ query_vecs[qi]) for p in ex.positive]
        ranked = [(int(i), float(s)) for i, s in zip(idxs[qi][start:end], scores[qi][start:end], strict=True) if i >= 0]
        rng = random.Random(f"{args.seed}:{ex.query}")
        negs = select_negatives(ex, ranked, pool, max(pos_scores), args, rng, stats)
        stats.pos_scores += pos_scores
        stats.neg_scores += [s for _, s in negs if s is not None]
        mined = TrainingExample(query=ex.query, positive=ex.positive, negative=[t for t, _ in negs], id=ex.id)
        if args.scores:
            missing = [t for t, s in negs if s is None]
            fill = iter(emb.encode_passages(missing) @ query_vecs[qi]) if missing else iter(())
            mined.pos_scores = pos_scores
            mined.neg_scores = [s if s is not None else float(next(fill)) for _, s in negs]
        out.append(mined)
    if args.teacher_model:
        teacher_scores(out, args.teacher_model)
        if args.teacher_margin is not None:
            stats.removed_teacher = drop_teacher_positives(out, args.teacher_margin)
    write_jsonl(args.output_file, [m.to_dict(args.output_keys) for m in out])
    log.info("mined %s -> %s: %s", args.input_file, args.output_file, stats.summary())
    return stats
