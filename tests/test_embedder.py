"""embedder: load by local dir / bundled name / HF id, normalised vectors, query instruction, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from archivesrag.embedder import load_embedder, resolve_model
from archivesrag.errors import UserError


def test_vectors_are_normalised_float32(embedder):
    v = embedder.encode_passages(["Records management in the cloud.", "Digital preservation."])
    assert v.dtype == np.float32 and v.shape == (2, embedder.dim) == (2, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_relevant_passage_scores_highest(embedder):
    passages = [
        "The archive is open Monday to Friday from 9am to 5pm.",
        "Trust in digital records entrusted to the Internet is the focus of InterPARES Trust.",
        "Bananas are rich in potassium.",
    ]
    q = embedder.encode_queries(["Which project studies trust in online digital records?"])
    scores = (q @ embedder.encode_passages(passages).T)[0]
    assert int(np.argmax(scores)) == 1


def test_query_instruction_applies_to_queries_only(minilm_path):
    plain = load_embedder(str(minilm_path), device="cpu")
    instructed = load_embedder(str(minilm_path), device="cpu", query_instruction="Represent this question: ")
    text = ["digital archives"]
    assert np.allclose(plain.encode_passages(text), instructed.encode_passages(text))
    assert not np.allclose(plain.encode_queries(text), instructed.encode_queries(text))


def test_local_dir_and_bundled_name_resolve_to_the_same_model(minilm_path):
    assert resolve_model("bundled") == str(minilm_path)
    assert resolve_model(str(minilm_path)) == str(minilm_path)


@pytest.mark.timeout(30)
def test_uncached_hub_id_offline_fails_fast_with_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as err:
        load_embedder("mixedbread-ai/mxbai-embed-large-v1")
    msg = str(err.value)
    assert "not in the Hugging Face cache" in msg and "--embedding_model bundled" in msg and "\n" not in msg


def test_missing_local_dir_and_file_are_errors(tmp_path):
    with pytest.raises(UserError, match="no such model directory"):
        resolve_model(str(tmp_path / "nope"))
    f = tmp_path / "model.bin"
    f.write_bytes(b"x")
    with pytest.raises(UserError, match="must be a directory"):
        resolve_model(str(f))


def test_directory_that_is_not_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="cannot load as a sentence-transformers model"):
        load_embedder(str(tmp_path), device="cpu")


def test_bf16_weights_match_fp32_vectors(minilm_path):
    """Where the CPU has native bf16 we encode with bf16 weights; the vectors must stay the same to 1e-3 cosine
    and come back as unit-length float32 (cosine = inner product)."""
    texts = [f"Record series {i}: minutes of the board, kept {i} years." for i in range(16)]
    fp32 = load_embedder(str(minilm_path), device="cpu", precision="fp32")
    bf16 = load_embedder(str(minilm_path), device="cpu", precision="bf16")
    assert fp32.precision == "fp32" and bf16.precision == "bf16"
    a, b = fp32.encode_passages(texts), bf16.encode_passages(texts)
    cos = np.sum(a * b, axis=1)
    assert np.all(cos > 0.999) and not np.array_equal(a, b)  # really encoded in bf16, and still the same vectors
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-6)


def test_precision_env_override_and_bad_value(monkeypatch, minilm_path):
    from archivesrag.embedder import pick_precision

    monkeypatch.setenv("ARCHIVESRAG_PRECISION", "fp32")
    assert pick_precision("cpu") == "fp32"
    assert pick_precision("cuda") == "fp32"
    with pytest.raises(UserError, match="use auto, fp32 or bf16"):
        pick_precision("cpu", "int4")
