"""Contrastive fine-tuning of an embedding model with the seed's flags (FlagEmbedding's ``finetune.run``).

The seed trains with FlagEmbedding 1.2; its flag names (``--normlized``, ``--temperature``, ``--train_group_size``,
``--negatives_cross_device``, ...) are our interface. FlagEmbedding 1.4 renamed them and cannot live beside
transformers 5, so the training loop here is sentence-transformers' trainer with the same meaning:

* each example is the query plus one positive and ``train_group_size - 1`` negatives, sampled afresh every time the
  example is drawn (so every epoch sees other negatives), with replacement when a line has too few;
* the loss is InfoNCE: with ``--normlized True`` cosine scores divided by ``--temperature`` (so the scale is
  ``1/temperature``); with ``--normlized False`` raw inner products and temperature 1, as FlagEmbedding resets it;
* ``--use_inbatch_neg`` (default on) scores each query against every passage in the batch, otherwise only
  against its own group; ``--negatives_cross_device`` gathers passages from every rank first;
* queries and passages are truncated separately (``--query_max_len`` / ``--passage_max_len``).

The output is a plain sentence-transformers directory (modules.json, the base model's pooling unless
``--sentence_pooling_method`` says otherwise, a Normalize module when ``--normlized``), loadable by
``SentenceTransformer(dir)``, LangChain's HuggingFaceEmbeddings, mine_hn.py, evaluate.py and rag.py.

Example:
    >>> train(["--output_dir", "out", "--model_name_or_path", "bundled", "--train_data", "query_minedHN.jsonl",
    ...        "--train_group_size", "2", "--num_train_epochs", "1"])
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
from sentence_transformers.util import cos_sim, dot_score
from torch import Tensor, nn

from archivesrag.embedder import resolve_model
from archivesrag.errors import UserError
from archivesrag.merging import merge_models, parse_merge_base
from archivesrag.records import TrainingExample, atomic_write, read_training_examples

log = logging.getLogger(__name__)

POOLING_METHODS = ("cls", "mean", "max", "lasttoken")


@dataclass
class ModelArguments:
    """Which model to start from (FlagEmbedding's ModelArguments)."""

    model_name_or_path: str = field(
        default="bundled", metadata={"help": "base model: local dir, Hugging Face id, or 'bundled' (all-MiniLM-L6-v2)"}
    )
    config_name: str | None = field(default=None, metadata={"help": "accepted for FlagEmbedding compatibility"})
    tokenizer_name: str | None = field(default=None, metadata={"help": "accepted for FlagEmbedding compatibility"})
    cache_dir: str | None = field(default=None, metadata={"help": "Hugging Face cache dir for downloads"})


@dataclass
class DataArguments:
    """Training data and how it is cut (FlagEmbedding's DataArguments)."""

    train_data: str = field(
        default="query_minedHN.jsonl", metadata={"help": "mine_hn.py output: a JSONL file or a dir of them"}
    )
    train_group_size: int = field(default=8, metadata={"help": "passages per query: 1 positive + N-1 negatives"})
    query_max_len: int = field(default=32, metadata={"help": "queries are truncated to this many tokens"})
    passage_max_len: int = field(default=128, metadata={"help": "passages are truncated to this many tokens"})
    max_example_num_per_dataset: int = field(default=100_000_000, metadata={"help": "cap examples per file"})
    query_instruction_for_retrieval: str | None = field(
        default=None, metadata={"help": "prefix added to every query (saved with the model as its query prompt)"}
    )
    passage_instruction_for_retrieval: str | None = field(
        default=None, metadata={"help": "prefix added to every passage"}
    )


@dataclass
class RetrieverTrainingArguments(SentenceTransformerTrainingArguments):
    """Every Hugging Face TrainingArguments flag, plus FlagEmbedding's retriever flags."""

    negatives_cross_device: bool = field(default=False, metadata={"help": "share negatives across ranks"})
    temperature: float = field(default=0.02, metadata={"help": "softmax temperature: loss scale = 1/temperature"})
    fix_position_embedding: bool = field(default=False, metadata={"help": "freeze the position embeddings"})
    sentence_pooling_method: str | None = field(
        default=None, metadata={"help": "cls / mean / max / lasttoken; default: keep the base model's pooling"}
    )
    normlized: bool = field(default=True, metadata={"help": "cosine scores (and a Normalize module) [sic]"})
    use_inbatch_neg: bool = field(default=True, metadata={"help": "use other queries' passages as negatives"})
    knowledge_distillation: bool = field(
        default=False,
        metadata={
            "help": "learn the teacher's pos_scores/neg_scores (mine_hn.py --teacher_model) over each query's group "
            "instead of a hard 1-of-G label (FlagEmbedding's flag)"
        },
    )
    distill_loss: str = field(
        default="kl",
        metadata={"help": "kl: KL divergence of the group softmaxes (FlagEmbedding); margin_mse: GPL's MarginMSE"},
    )
    contrastive_weight: float = field(
        default=0.0,
        metadata={"help": "with --knowledge_distillation: add this much of the in-batch contrastive loss"},
    )
    merge_base: str | None = field(
        default=None,
        metadata={
            "help": "after training, average the weights with the base model's, this being the base's share (0.5: "
            "the plain average; LM-Cocktail); output_dir gets the merged model, output_dir/unmerged the tuned one"
        },
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "start over instead of resuming from the last checkpoint in output_dir"}
    )


# ---------------------------------------------------------------- data


def load_training_data(data: DataArguments) -> list[TrainingExample]:
    """Read every JSONL under ``train_data``; a group size above 1 needs mined negatives on every line.

    A line without negatives is an error (not silently in-batch only) when ``train_group_size > 1``: such data
    usually means mine_hn.py was skipped, and training would quietly lose its hard negatives.
    """
    root = Path(data.train_data)
    files = sorted(root.glob("*.jsonl")) if root.is_dir() else [root]
    if not files:
        raise UserError(f"{root}: no .jsonl files in this directory; point --train_data at mine_hn.py's output")
    examples: list[TrainingExample] = []
    for path in files:
        rows = read_training_examples(path, require_negatives=data.train_group_size > 1)
        examples.extend(rows[: data.max_example_num_per_dataset])
    if not examples:
        raise UserError(f"{root}: no training examples")
    return examples


def require_teacher_scores(examples: list[TrainingExample], where: str) -> None:
    """--knowledge_distillation needs a score for every positive and negative."""
    for n, ex in enumerate(examples, start=1):
        ok = ex.pos_scores is not None and ex.neg_scores is not None
        if not ok or len(ex.pos_scores) != len(ex.positive) or len(ex.neg_scores) != len(ex.negative):
            raise UserError(
                f"{where}: example {n} has no pos_scores/neg_scores for each passage, which --knowledge_distillation "
                "needs; score them with mine_hn.py --teacher_model bundled"
            )


def sample_indices(example: TrainingExample, group_size: int, rng: random.Random) -> tuple[int, list[int]]:
    """Which positive and which ``group_size - 1`` negatives (indices), as FlagEmbedding's TrainDatasetForEmbedding
    draws them: negatives without replacement, repeated when the line has too few."""
    pos = rng.randrange(len(example.positive))
    need = group_size - 1
    if need <= 0:
        return pos, []
    pool = list(range(len(example.negative)))
    if len(pool) < need:
        pool = pool * math.ceil(need / len(pool))
    return pos, rng.sample(pool, need)


def sample_group(example: TrainingExample, group_size: int, rng: random.Random) -> list[str]:
    """One positive and ``group_size - 1`` negatives (see :func:`sample_indices`).

    Example:
        >>> sample_group(TrainingExample("q", ["p"], ["n1"]), 3, random.Random(0))
        ['p', 'n1', 'n1']
    """
    pos, negs = sample_indices(example, group_size, rng)
    return [example.positive[pos]] + [example.negative[i] for i in negs]


def group_teacher_scores(example: TrainingExample, pos: int, negs: list[int]) -> list[float]:
    """The teacher's scores of a sampled group, in the group's order (positive first)."""
    assert example.pos_scores is not None and example.neg_scores is not None
    return [example.pos_scores[pos]] + [example.neg_scores[i] for i in negs]


@dataclass
class GroupCollator(SentenceTransformerDataCollator):
    """Turns ``{query, example}`` rows into a query column and ``group_size`` passage columns.

    Sampling happens here, at batch time, so each epoch draws other negatives; queries and passages get their own
    max length, which the stock collator cannot do.
    """

    examples: list[TrainingExample] = field(default_factory=list)
    group_size: int = 2
    query_max_len: int = 32
    passage_max_len: int = 128
    query_prefix: str = ""
    passage_prefix: str = ""
    seed: int = 42
    seen: int = 0
    teacher_scores: bool = False  # also hand the loss each group's teacher scores as its labels

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed + int(os.environ.get("RANK", "0")))

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [self.examples[f["row"]] for f in features]
        self.seen += len(rows)
        drawn = [sample_indices(ex, self.group_size, self._rng) for ex in rows]
        groups = [[ex.positive[p]] + [ex.negative[i] for i in n] for ex, (p, n) in zip(rows, drawn, strict=True)]
        columns = {"query": ([self.query_prefix + ex.query for ex in rows], self.query_max_len)}
        for i in range(self.group_size):
            name = "positive" if i == 0 else f"negative{i}"
            columns[name] = ([self.passage_prefix + g[i] for g in groups], self.passage_max_len)
        batch: dict[str, Any] = {}
        for name, (texts, max_len) in columns.items():
            for key, value in self.preprocess_fn(texts, max_length=max_len).items():
                batch[f"{name}_{key}"] = value
        if self.teacher_scores:
            scores = [group_teacher_scores(ex, p, n) for ex, (p, n) in zip(rows, drawn, strict=True)]
            batch["label"] = torch.tensor(scores, dtype=torch.float32)
        return batch


# ---------------------------------------------------------------- model and loss


def load_base_model(model_args: ModelArguments, args: RetrieverTrainingArguments) -> SentenceTransformer:
    """Load the base model as sentence-transformers, then apply the seed's pooling and normalisation flags."""
    path = resolve_model(model_args.model_name_or_path)
    try:
        model = SentenceTransformer(path, cache_folder=model_args.cache_dir, device=str(args.device))
    except (OSError, ValueError) as err:
        raise UserError(f"{model_args.model_name_or_path}: cannot load ({str(err).splitlines()[0]})") from None
    if args.sentence_pooling_method:
        set_pooling(model, args.sentence_pooling_method)
    if args.normlized and not any(isinstance(m, Normalize) for m in model):
        model.append(Normalize())
    if not args.normlized:
        drop = [k for k, m in model._modules.items() if isinstance(m, Normalize)]
        for key in drop:
            del model._modules[key]
    if args.fix_position_embedding:
        frozen = [n for n, p in model.named_parameters() if "position_embeddings" in n]
        for name, param in model.named_parameters():
            if name in frozen:
                param.requires_grad = False
        log.info("froze %d position-embedding tensors", len(frozen))
    return model


def set_pooling(model: SentenceTransformer, method: str) -> None:
    """Replace the model's Pooling module with one using ``method`` (cls for BGE/mxbai, mean for MiniLM)."""
    if method not in POOLING_METHODS:
        raise UserError(f"--sentence_pooling_method {method}: choose one of {', '.join(POOLING_METHODS)}")
    for key, module in model._modules.items():
        if isinstance(module, Pooling):
            model._modules[key] = Pooling(module.get_embedding_dimension(), pooling_mode=method)
            return
    raise UserError(f"{model}: no pooling module to change; drop --sentence_pooling_method")


def group_scores(model: SentenceTransformer, features: list[dict[str, Tensor]], scale: float, sim: Any) -> Tensor:
    """(batch, group) scaled similarities of each query to its own group's passages (features: query column, then
    the group's passage columns)."""
    emb = [model(f)["sentence_embedding"] for f in features]
    query, passages = emb[0], torch.stack(emb[1:], dim=1)  # (B, d), (B, G, d)
    if sim is cos_sim:
        query = nn.functional.normalize(query, dim=-1)
        passages = nn.functional.normalize(passages, dim=-1)
    return torch.einsum("bd,bgd->bg", query, passages) * scale


class GroupOnlyLoss(nn.Module):
    """InfoNCE over each query's own group only (``--use_inbatch_neg False``)."""

    def __init__(self, model: SentenceTransformer, scale: float, similarity_fct: Any) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.similarity_fct = similarity_fct

    def forward(self, sentence_features: list[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        scores = group_scores(self.model, sentence_features, self.scale, self.similarity_fct)
        target = torch.zeros(len(scores), dtype=torch.long, device=scores.device)
        return nn.functional.cross_entropy(scores, target)


class DistillLoss(nn.Module):
    """Learn a cross-encoder teacher's scores over each query's group (labels: (batch, group) teacher scores).

    ``kl`` (FlagEmbedding's knowledge distillation): KL divergence from the softmax of the teacher's scores to the
    softmax of the student's scaled similarities, so the student learns how much better each passage is, not only
    which one is the positive. ``margin_mse`` (GPL): the squared error between the student's and the teacher's
    positive-minus-negative margins. ``contrastive`` > 0 adds that much of the in-batch InfoNCE loss.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        scale: float,
        similarity_fct: Any,
        kind: str = "kl",
        contrastive: nn.Module | None = None,
        contrastive_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.similarity_fct = similarity_fct
        self.kind = kind
        self.contrastive = contrastive
        self.contrastive_weight = contrastive_weight

    def forward(self, sentence_features: list[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        if labels is None:
            raise ValueError("DistillLoss needs the teacher scores as labels")
        student = group_scores(self.model, sentence_features, self.scale, self.similarity_fct)
        teacher = labels.to(student.dtype)
        if self.kind == "margin_mse":
            loss = nn.functional.mse_loss(student[:, :1] - student[:, 1:], teacher[:, :1] - teacher[:, 1:])
        else:
            loss = nn.functional.kl_div(
                nn.functional.log_softmax(student, dim=-1),
                nn.functional.softmax(teacher, dim=-1),
                reduction="batchmean",
            )
        if self.contrastive is not None and self.contrastive_weight > 0:
            loss = loss + self.contrastive_weight * self.contrastive(sentence_features, None)
        return loss


def build_loss(model: SentenceTransformer, args: RetrieverTrainingArguments) -> nn.Module:
    """The seed's loss: scale 1/temperature on cosine, or temperature 1 on inner product (FlagEmbedding's rule)."""
    if args.temperature <= 0:
        raise UserError(f"--temperature {args.temperature}: must be > 0 (0.02 is the seed's value)")
    similarity, scale = (cos_sim, 1.0 / args.temperature) if args.normlized else (dot_score, 1.0)
    if not args.normlized:
        log.info("--normlized False: inner-product scores, temperature reset to 1 (as FlagEmbedding does)")
    if args.knowledge_distillation:
        if args.distill_loss not in ("kl", "margin_mse"):
            raise UserError(f"--distill_loss {args.distill_loss}: use kl or margin_mse")
        contrastive = MultipleNegativesRankingLoss(
            model, scale=scale, similarity_fct=similarity, gather_across_devices=args.negatives_cross_device
        )
        return DistillLoss(model, scale, similarity, args.distill_loss, contrastive, args.contrastive_weight)
    if not args.use_inbatch_neg:
        if args.negatives_cross_device:
            log.warning("--negatives_cross_device has no effect with --use_inbatch_neg False")
        return GroupOnlyLoss(model, scale, similarity)
    return MultipleNegativesRankingLoss(
        model, scale=scale, similarity_fct=similarity, gather_across_devices=args.negatives_cross_device
    )


# ---------------------------------------------------------------- devices and arguments


def adapt_argv(argv: list[str], cuda: bool) -> list[str]:
    """Make the seed's GPU command run on a CPU-only machine instead of failing or misbehaving.

    Without CUDA: ``--fp16`` is dropped with a warning (fp32 instead), ``--use_cpu`` is set, and under torchrun
    the gloo backend is chosen, so two CPU processes split the data instead of each training on all of it.

    Example:
        >>> adapt_argv(["--fp16", "--output_dir", "o"], cuda=False)
        ['--output_dir', 'o', '--use_cpu', 'True']
    """
    if cuda:
        return argv
    out: list[str] = []
    skip_value = False
    for i, arg in enumerate(argv):
        if skip_value:
            skip_value = False
            continue
        if arg == "--fp16" or arg.startswith("--fp16="):
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            if arg == "--fp16" and nxt.lower() in ("true", "false", "1", "0", "yes", "no"):
                skip_value = True
            log.warning("--fp16 needs a CUDA GPU; training in fp32 on CPU")
            continue
        out.append(arg)
    if "--use_cpu" not in out:
        out += ["--use_cpu", "True"]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "--ddp_backend" not in out:
        out += ["--ddp_backend", "gloo"]
    return out


def parse_arguments(argv: list[str]) -> tuple[ModelArguments, DataArguments, RetrieverTrainingArguments]:
    """Parse run.py's flags with HfArgumentParser; a bad combination becomes a one-line error."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser((ModelArguments, DataArguments, RetrieverTrainingArguments))
    try:
        model_args, data_args, args = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as err:
        raise UserError(str(err).splitlines()[0]) from None
    if data_args.train_group_size < 1:
        raise UserError(f"--train_group_size {data_args.train_group_size}: must be >= 1 (1 positive + negatives)")
    return model_args, data_args, args


def find_resume_point(args: RetrieverTrainingArguments) -> str | None:
    """The checkpoint to continue from: the one asked for, else the newest in output_dir (rerun = resume)."""
    from transformers.trainer_utils import get_last_checkpoint

    if args.resume_from_checkpoint:
        if not Path(args.resume_from_checkpoint).is_dir():
            raise UserError(f"--resume_from_checkpoint {args.resume_from_checkpoint}: no such checkpoint directory")
        return args.resume_from_checkpoint
    out = Path(args.output_dir)
    if args.overwrite_output_dir or not out.is_dir():
        return None
    last = get_last_checkpoint(str(out))
    if last:
        log.info("resuming from %s (pass --overwrite_output_dir True to start over)", last)
    return last


def gather_counts(count: int) -> list[int]:
    """Examples each rank trained on, gathered to every rank (a one-item list without torch.distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [count]
    counts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(counts, count)
    return [int(c) for c in counts]


# ---------------------------------------------------------------- entry point


def train(argv: list[str]) -> Path:
    """Fine-tune as run.py's flags say; returns the output directory holding the sentence-transformers model."""
    import datasets
    from sentence_transformers import SentenceTransformerTrainer

    model_args, data_args, args = parse_arguments(adapt_argv(argv, torch.cuda.is_available()))
    merge_weight = parse_merge_base(args.merge_base, allow_auto=False)
    examples = load_training_data(data_args)
    if args.knowledge_distillation:
        require_teacher_scores(examples, data_args.train_data)
    per_step = args.per_device_train_batch_size * args.world_size
    if args.dataloader_drop_last and len(examples) < per_step:
        raise UserError(
            f"{data_args.train_data}: {len(examples)} training examples are fewer than one batch "
            f"({args.per_device_train_batch_size} per device x {args.world_size} processes); lower "
            "--per_device_train_batch_size or generate more queries"
        )
    resume = find_resume_point(args)
    model = load_base_model(model_args, args)
    if data_args.query_instruction_for_retrieval:
        model.prompts["query"] = data_args.query_instruction_for_retrieval
    log.info(
        "training %s on %d examples, group size %d, %s, world size %d",
        model_args.model_name_or_path,
        len(examples),
        data_args.train_group_size,
        "in-batch negatives" if args.use_inbatch_neg else "group negatives only",
        args.world_size,
    )
    collator = GroupCollator(
        preprocess_fn=model.preprocess,
        examples=examples,
        group_size=data_args.train_group_size,
        query_max_len=data_args.query_max_len,
        passage_max_len=data_args.passage_max_len,
        query_prefix=data_args.query_instruction_for_retrieval or "",
        passage_prefix=data_args.passage_instruction_for_retrieval or "",
        seed=args.seed,
        teacher_scores=args.knowledge_distillation,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_dict({"row": list(range(len(examples)))}),
        loss=build_loss(model, args),
        data_collator=collator,
    )
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    counts = gather_counts(collator.seen)
    if trainer.is_world_process_zero():
        if merge_weight is None:
            trainer.save_model(args.output_dir)
        else:
            unmerged = Path(args.output_dir) / "unmerged"
            trainer.save_model(str(unmerged))
            merge_models(model_args.model_name_or_path, str(unmerged), float(merge_weight), args.output_dir)
        write_summary(Path(args.output_dir), trainer, result.metrics, counts, seconds, len(examples))
    return Path(args.output_dir)


def write_summary(
    out: Path, trainer: Any, metrics: dict[str, Any], counts: list[int], seconds: float, n_examples: int
) -> None:
    """``train_summary.json``: what the run did, for loop.py's report and for users comparing runs."""
    summary = {
        "examples": n_examples,
        "world_size": len(counts),
        # drawn by each rank's collator; includes batches replayed to skip ahead when resuming mid-epoch
        "examples_seen_per_rank": counts,
        "global_step": trainer.state.global_step,
        "train_seconds": round(seconds, 2),
        "train_samples_per_second": metrics.get("train_samples_per_second"),
        "train_loss": metrics.get("train_loss"),
        "log_history": trainer.state.log_history,
    }
    with atomic_write(out / "train_summary.json") as f:
        json.dump(summary, f, indent=1)
    log.info(
        "saved %s: %d steps, loss %.4f, %.1f samples/s",
        out,
        trainer.state.global_step,
        metrics.get("train_loss", float("nan")),
        metrics.get("train_samples_per_second") or 0.0,
    )
