"""run.py / archivesrag.training: the seed's flags and command, on CPU, with the bundled all-MiniLM-L6-v2.

The slow parts (torchrun with one and two processes, DeepSpeed) each train once per module on real stdlib
docstring pairs with mined negatives.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from corpus import stdlib_pairs

from archivesrag.embedder import load_embedder
from archivesrag.errors import UserError
from archivesrag.evaluation import evaluate_all, load_query_set, split_by_document
from archivesrag.mining import MiningArgs, mine
from archivesrag.records import TrainingExample
from archivesrag.training import (
    GroupOnlyLoss,
    adapt_argv,
    build_loss,
    load_base_model,
    parse_arguments,
    sample_group,
)

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
# The seed's command, verbatim after "run.py" (shlex keeps its empty --query_instruction_for_retrieval "").
SEED_COMMAND = shlex.split(
    "--output_dir archivesrag --model_name_or_path mixedbread-ai/mxbai-embed-large-v1 "
    "--train_data query_minedHN.jsonl --learning_rate 1e-5 --fp16 --num_train_epochs 5 "
    "--per_device_train_batch_size 32 --dataloader_drop_last True --normlized True --temperature 0.02 "
    "--query_max_len 64 --passage_max_len 256 --train_group_size 2 --negatives_cross_device --logging_steps 10 "
    '--save_steps 1000 --query_instruction_for_retrieval ""'
)
FAST = ["--report_to", "none", "--disable_tqdm", "True", "--passage_max_len", "64", "--query_max_len", "32"]


def run_py(args: list[str], nproc: int | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [*TORCHRUN, "--nproc_per_node", str(nproc), "run.py"] if nproc else [sys.executable, "run.py"]
    env = {**os.environ, "OMP_NUM_THREADS": "1" if (nproc or 1) > 1 else "2", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([*cmd, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def run_py_in_process(args: list[str], capsys) -> tuple[int, str]:
    """run.py's ``main`` as its ``__main__`` runs it, without a new interpreter importing torch again (each
    subprocess costs ~10 s here); returns (exit code, stderr). One test below keeps the real subprocess."""
    from archivesrag.errors import run_cli
    from archivesrag.training import train

    with pytest.raises(SystemExit) as exited:
        run_cli(lambda: train(args))
    return exited.value.code, capsys.readouterr().err


@pytest.fixture(scope="module")
def data(tmp_path_factory, embedder):
    """Real pairs split by document (75% train / 25% eval), train part mined with the bundled model."""
    d = tmp_path_factory.mktemp("train")
    queries = d / "query.jsonl"
    queries.write_text("".join(json.dumps({"query": q, "positive": [t]}) + "\n" for q, t in stdlib_pairs(300)))
    train, held_out = split_by_document(queries, 0.25, seed=1)
    mined = d / "mined.jsonl"
    mine(
        MiningArgs(
            model_name_or_path="bundled",
            input_file=str(train),
            output_file=str(mined),
            range_for_sampling="2-50",
            negative_number=7,
        ),
        embedder=embedder,
    )
    return {"dir": d, "mined": mined, "held_out": held_out}


@pytest.fixture(scope="module")
def single(data):
    """One epoch under torchrun --nproc_per_node 1 (the seed's launcher), fp16 flag included as the seed has it."""
    out = data["dir"] / "ft"
    proc = run_py(
        [
            "--output_dir",
            str(out),
            "--model_name_or_path",
            "bundled",
            "--train_data",
            str(data["mined"]),
            "--fp16",
            "--num_train_epochs",
            "1",
            "--per_device_train_batch_size",
            "16",
            "--learning_rate",
            "5e-5",
            "--train_group_size",
            "2",
            "--save_strategy",
            "no",
            "--seed",
            "7",
            "--logging_steps",
            "5",
            *FAST,
        ],
        nproc=1,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


# ---------------------------------------------------------------- flags


def test_seed_command_parses_with_its_meaning_on_cpu():
    model_args, data_args, args = parse_arguments(adapt_argv(SEED_COMMAND, cuda=False))
    assert model_args.model_name_or_path == "mixedbread-ai/mxbai-embed-large-v1"
    assert (data_args.train_group_size, data_args.query_max_len, data_args.passage_max_len) == (2, 64, 256)
    assert data_args.query_instruction_for_retrieval == ""
    assert args.normlized and args.negatives_cross_device and args.dataloader_drop_last
    assert args.temperature == 0.02 and args.num_train_epochs == 5 and args.learning_rate == 1e-5
    assert not args.fp16 and args.use_cpu


def test_fp16_on_cpu_warns_and_is_dropped(caplog):
    with caplog.at_level(logging.WARNING):
        argv = adapt_argv(["--fp16", "True", "--output_dir", "o"], cuda=False)
    assert argv == ["--output_dir", "o", "--use_cpu", "True"]
    assert "fp32" in caplog.text


def test_two_cpu_processes_get_gloo(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert adapt_argv([], cuda=False)[-2:] == ["--ddp_backend", "gloo"]


def test_gpu_argv_is_untouched():
    assert adapt_argv(["--fp16"], cuda=True) == ["--fp16"]


# ---------------------------------------------------------------- sampling and loss


def test_group_is_positive_then_distinct_negatives():
    ex = TrainingExample("q", ["p"], [f"n{i}" for i in range(10)])
    group = sample_group(ex, 4, random.Random(0))
    assert group[0] == "p" and len(set(group[1:])) == 3 and all(g.startswith("n") for g in group[1:])


def test_short_negative_list_is_sampled_with_replacement():
    group = sample_group(TrainingExample("q", ["p"], ["n1", "n2"]), 6, random.Random(0))
    assert len(group) == 6 and set(group[1:]) == {"n1", "n2"}


def test_negatives_change_between_draws():
    ex = TrainingExample("q", ["p"], [f"n{i}" for i in range(30)])
    rng = random.Random(0)
    assert sample_group(ex, 2, rng) != sample_group(ex, 2, rng) or sample_group(ex, 2, rng) != sample_group(ex, 2, rng)


def _args(*extra: str):
    return parse_arguments(adapt_argv(["--output_dir", "unused", *extra], cuda=False))


def test_loss_scale_is_inverse_temperature(embedder):
    loss = build_loss(embedder.model, _args("--temperature", "0.05")[2])
    assert loss.scale == pytest.approx(20.0) and loss.similarity_fct.__name__ == "cos_sim"


def test_not_normalised_means_inner_product_at_temperature_one(embedder):
    loss = build_loss(embedder.model, _args("--normlized", "False", "--temperature", "0.02")[2])
    assert loss.scale == 1.0 and loss.similarity_fct.__name__ == "dot_score"


def test_cross_device_flag_gathers_negatives(embedder):
    assert build_loss(embedder.model, _args("--negatives_cross_device")[2]).gather_across_devices


def test_group_only_loss_prefers_the_true_positive(embedder):
    loss = build_loss(embedder.model, _args("--use_inbatch_neg", "False")[2])
    assert isinstance(loss, GroupOnlyLoss)
    q = ["how do I sort a list in place"]
    right, wrong = ["list.sort() sorts the list in place."], ["The socket module opens network connections."]

    def value(pos: list[str], neg: list[str]) -> float:
        feats = [embedder.model.preprocess(t) for t in (q, pos, neg)]
        with torch.no_grad():
            return float(loss(feats))

    assert value(right, wrong) < value(wrong, right)


def test_pooling_flag_replaces_pooling_and_normalize_is_added(minilm_path):
    model_args, _, args = _args("--model_name_or_path", str(minilm_path), "--sentence_pooling_method", "cls")
    model = load_base_model(model_args, args)
    names = [type(m).__name__ for m in model]
    assert names[-1] == "Normalize" and model[1].pooling_mode == "cls"


def test_unknown_pooling_is_a_one_line_error(minilm_path):
    model_args, _, args = _args("--model_name_or_path", str(minilm_path), "--sentence_pooling_method", "avg")
    with pytest.raises(UserError, match="choose one of"):
        load_base_model(model_args, args)


# ---------------------------------------------------------------- real training runs


def test_torchrun_one_process_saves_a_model_everyone_loads(single, data):
    out, proc = single
    assert "training in fp32 on CPU" in proc.stderr
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((out / "modules.json").read_text())]
    assert modules == ["Transformer", "Pooling", "Normalize"]
    assert json.loads((out / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "mean"  # MiniLM's own
    emb = load_embedder(str(out))
    vec = emb.encode_queries(["read a file line by line"])
    assert vec.shape == (1, 384) and abs(float((vec**2).sum()) - 1) < 1e-4
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["examples_seen_per_rank"] == [summary["global_step"] * 16]
    assert any("loss" in row for row in summary["log_history"])


def test_fine_tuned_model_beats_base_on_held_out_documents(single, data):
    out, _ = single
    table = evaluate_all(load_query_set(data["held_out"]), ["bundled", str(out)], bm25=False)
    assert table[str(out)]["ndcg@10"] >= table["bundled"]["ndcg@10"]


def test_two_processes_each_train_on_half_the_data(data, tmp_path):
    rows = data["mined"].read_text().splitlines()[:64]
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(rows) + "\n")
    out = tmp_path / "ddp"
    proc = run_py(
        [
            "--output_dir",
            str(out),
            "--model_name_or_path",
            "bundled",
            "--train_data",
            str(small),
            "--num_train_epochs",
            "1",
            "--per_device_train_batch_size",
            "8",
            "--train_group_size",
            "2",
            "--negatives_cross_device",
            "--save_strategy",
            "no",
            *FAST,
        ],
        nproc=2,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["examples_seen_per_rank"] == [32, 32]
    assert summary["global_step"] == 4


def test_rerun_resumes_from_the_last_checkpoint_and_keeps_the_instruction(data, tmp_path):
    """Also runs with --gradient_checkpointing, which the seed's users reach for on large models."""
    out = tmp_path / "resume"
    common = [
        "--output_dir",
        str(out),
        "--model_name_or_path",
        "bundled",
        "--train_data",
        str(data["mined"]),
        "--per_device_train_batch_size",
        "4",
        "--train_group_size",
        "2",
        "--save_steps",
        "2",
        "--logging_steps",
        "1",
        "--query_instruction_for_retrieval",
        "query: ",
        "--gradient_checkpointing",
        "True",
        *FAST,
    ]
    first = run_py([*common, "--max_steps", "2"])
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_py([*common, "--max_steps", "4"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from" in second.stderr and "checkpoint-2" in second.stderr
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["global_step"] == 4
    assert second.stdout.count("{'loss'") == 2  # steps 3 and 4 only: 1 and 2 came from the checkpoint
    assert load_embedder(str(out)).query_instruction == "query: "


@pytest.mark.skipif(
    not torch.__spec__ or not __import__("importlib").util.find_spec("deepspeed"),
    reason="deepspeed is an optional extra (installed by scripts/setup.sh --dev)",
)
def test_deepspeed_zero2_config_trains_a_step_under_torchrun(data, tmp_path):
    out = tmp_path / "ds"
    proc = run_py(
        [
            "--output_dir",
            str(out),
            "--model_name_or_path",
            "bundled",
            "--train_data",
            str(data["mined"]),
            "--per_device_train_batch_size",
            "4",
            "--train_group_size",
            "2",
            "--max_steps",
            "1",
            "--deepspeed",
            str(ROOT / "ds_config.json"),
            "--save_strategy",
            "no",
            *FAST,
        ],
        nproc=1,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "train_summary.json").read_text())["global_step"] == 1


# ---------------------------------------------------------------- bad input


def test_lines_without_negatives_are_a_path_line_error(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text(
        json.dumps({"query": "a b", "positive": ["c"], "negative": ["d"]})
        + "\n"
        + json.dumps({"query": "e f", "positive": ["g"]})
        + "\n"
    )
    proc = run_py(["--output_dir", str(tmp_path / "o"), "--train_data", str(bad), "--train_group_size", "2"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {bad}:2: no negatives")
    assert not (tmp_path / "o").exists()


def test_fewer_examples_than_a_batch_is_one_line(data, tmp_path, capsys):
    small = tmp_path / "three.jsonl"
    small.write_text("\n".join(data["mined"].read_text().splitlines()[:3]) + "\n")
    code, err = run_py_in_process(
        [
            "--output_dir",
            str(tmp_path / "o"),
            "--train_data",
            str(small),
            "--train_group_size",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--dataloader_drop_last",
            "True",
            *FAST,
        ],
        capsys,
    )
    assert code == 2 and "fewer than one batch" in err.strip().splitlines()[-1]


def test_wrong_keys_are_a_path_line_error(tmp_path, capsys):
    bad = tmp_path / "q.jsonl"
    bad.write_text(json.dumps({"question": "a b", "answer": ["c"]}) + "\n")
    code, err = run_py_in_process(
        ["--output_dir", str(tmp_path / "o"), "--train_data", str(bad), "--train_group_size", "1"], capsys
    )
    assert code == 2 and f"{bad}:1" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def scored(data) -> Path:
    """48 mined lines with 3 negatives each, scored once by the bundled ms-marco cross-encoder (as mine_hn.py
    --teacher_model does); both distillation losses train on the same file."""
    from archivesrag.mining import teacher_scores
    from archivesrag.records import read_training_examples, write_jsonl

    examples = read_training_examples(data["mined"])[:48]
    for ex in examples:
        ex.negative = ex.negative[:3]
    teacher_scores(examples, "bundled")
    path = data["dir"] / "scored.jsonl"
    write_jsonl(path, [ex.to_dict("flagembedding") for ex in examples])
    return path


@pytest.mark.parametrize("kind", ["kl", "margin_mse"])
def test_distillation_from_teacher_scores_trains_and_lowers_its_loss(scored, tmp_path, kind):
    out = tmp_path / "kd"
    merge = ["--merge_base", "0.5"] if kind == "margin_mse" else []  # one run also checks the merge (below)
    proc = run_py(
        [
            "--output_dir",
            str(out),
            "--model_name_or_path",
            "bundled",
            "--train_data",
            str(scored),
            "--knowledge_distillation",
            "True",
            "--distill_loss",
            kind,
            "--num_train_epochs",
            "4",
            "--per_device_train_batch_size",
            "16",
            "--learning_rate",
            "5e-5",
            "--train_group_size",
            "4",
            "--save_strategy",
            "no",
            "--logging_steps",
            "1",
            "--seed",
            "3",
            *merge,
            *FAST,
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    if merge:
        assert_is_average(out, out / "unmerged", "bundled")
    losses = [h["loss"] for h in json.loads((out / "train_summary.json").read_text())["log_history"] if "loss" in h]
    assert len(losses) == 12 and sum(losses[-3:]) < sum(losses[:3])


def assert_is_average(merged: Path, tuned: Path, base: str) -> None:
    """Every weight of ``merged`` is the mean of the tuned and the base model's, and tuned differs from base."""
    from sentence_transformers import SentenceTransformer

    from archivesrag.embedder import resolve_model

    m, t = (SentenceTransformer(str(p), device="cpu").state_dict() for p in (merged, tuned))
    b = SentenceTransformer(resolve_model(base), device="cpu").state_dict()
    assert set(m) == set(b)
    name = next(k for k in b if k.endswith("encoder.layer.0.attention.self.query.weight"))
    assert not torch.allclose(t[name], b[name])  # training moved it, so the average is not trivially either
    for key in m:
        if torch.is_floating_point(m[key]):
            assert torch.allclose(m[key], (t[key] + b[key]) / 2, atol=1e-6), key


def test_merge_base_outside_0_1_is_one_line(data, tmp_path, capsys):
    code, err = run_py_in_process(["--output_dir", str(tmp_path / "o"), "--model_name_or_path", "bundled",
                                   "--train_data", str(data["mined"]), "--merge_base", "1.5", *FAST], capsys)
    assert code == 2 and "--merge_base 1.5" in err and "Traceback" not in err


def test_distillation_without_scores_is_one_line(data, tmp_path, capsys):
    code, err = run_py_in_process(
        [
            "--output_dir",
            str(tmp_path / "o"),
            "--model_name_or_path",
            "bundled",
            "--train_data",
            str(data["mined"]),
            "--knowledge_distillation",
            "True",
            "--train_group_size",
            "2",
            *FAST,
        ],
        capsys,
    )
    assert code == 2 and "mine_hn.py --teacher_model bundled" in err and "Traceback" not in err


def test_an_unknown_distillation_loss_is_one_line(embedder):
    with pytest.raises(UserError, match="--distill_loss mse: use kl or margin_mse"):
        build_loss(embedder.model, _args("--knowledge_distillation", "True", "--distill_loss", "mse")[2])
