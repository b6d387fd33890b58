"""Session-scoped real parts shared by the whole suite: the bundled embedder, the bundled GGUF and a real
llama.cpp server on 127.0.0.1. Nothing here touches the network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Two llama.cpp threads on two shared cores collapse to ~1 tok/s; one thread and passive OpenMP waits keep the
# LLM, the embedder and pytest from starving each other. Subprocesses inherit these.
os.environ.setdefault("ARCHIVESRAG_LLM_THREADS", "1")
os.environ.setdefault("ARCHIVESRAG_LLM_BATCH_THREADS", "1")
os.environ.setdefault("ARCHIVESRAG_OCR_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    from archivesrag.embedder import bundled_model_path

    return bundled_model_path()


@pytest.fixture(scope="session")
def embedder():
    from archivesrag.embedder import load_embedder

    return load_embedder("bundled", device="cpu")


@pytest.fixture(scope="session")
def qwen_gguf() -> Path:
    from archivesrag.llm import bundled_gguf_path

    return bundled_gguf_path("0.5b")  # the small one keeps the suite fast; test_answers.py runs both


@pytest.fixture(scope="session")
def llama_server(qwen_gguf):
    """A real llama.cpp server (xllamacpp) with the bundled Qwen GGUF; yields its OpenAI base URL."""
    from archivesrag.llm import local_server

    return local_server(qwen_gguf, n_ctx=2048, n_parallel=2).base_url
