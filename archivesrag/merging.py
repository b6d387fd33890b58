"""Weight interpolation of a fine-tuned embedder with its base (LM-Cocktail's model merging).

A model fine-tuned on a few hundred synthetic queries learns the domain and forgets some of its general skill;
averaging its weights with the base's keeps much of both (Xiao et al., LM-Cocktail, 2023). ``base_weight`` is the
base model's share: 0 keeps the fine-tuned model, 1 gives back the base, 0.5 is the plain average.

Example:
    >>> merge_models("bundled", "work/model", 0.5, "work/model-merged")  # doctest: +SKIP
    PosixPath('work/model-merged')
"""

from __future__ import annotations

import logging
from pathlib import Path

from archivesrag.embedder import resolve_model
from archivesrag.errors import UserError

log = logging.getLogger(__name__)


def parse_merge_base(value: str | None, allow_auto: bool = True) -> float | str | None:
    """``--merge_base``'s value: None (off), a base weight in [0, 1], or ``auto``.

    Example:
        >>> parse_merge_base("0.5"), parse_merge_base("auto"), parse_merge_base(None)
        (0.5, 'auto', None)
    """
    if value is None or value == "" or value.lower() == "none":
        return None
    if value.lower() == "auto":
        if not allow_auto:
            raise UserError("--merge_base auto needs held-out queries to choose on: use loop.py --merge_base auto")
        return "auto"
    try:
        weight = float(value)
    except ValueError:
        raise UserError(f"--merge_base {value}: give the base model's weight between 0 and 1, or auto") from None
    if not 0.0 <= weight <= 1.0:
        raise UserError(f"--merge_base {value}: the base model's weight must be between 0 and 1")
    return weight


def merge_models(base: str, tuned: str, base_weight: float, out: str | Path) -> Path:
    """Write ``base_weight * base + (1 - base_weight) * tuned`` (every floating-point weight) to ``out``.

    The tuned model's modules, tokenizer and config are kept; only tensor values change. Both models must have the
    same architecture (a model fine-tuned from that base has).
    """
    import torch
    from sentence_transformers import SentenceTransformer

    tuned_model = SentenceTransformer(str(tuned), device="cpu")
    base_state = SentenceTransformer(resolve_model(base), device="cpu").state_dict()
    state = tuned_model.state_dict()
    if set(state) != set(base_state) or any(state[k].shape != base_state[k].shape for k in state):
        raise UserError(f"--merge_base: {tuned} and {base} have different architectures; merge needs the same one")
    merged = {
        k: (base_weight * base_state[k] + (1 - base_weight) * v) if torch.is_floating_point(v) else v
        for k, v in state.items()
    }
    tuned_model.load_state_dict(merged)
    tuned_model.save(str(out))
    log.info("merged %s with %s (base weight %.2f) into %s", tuned, base, base_weight, out)
    return Path(out)
