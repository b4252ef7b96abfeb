import json
import os
import shutil
import subprocess
import sys
import warnings

import pytest
import torch

from notewave.cli import main
from notewave.core.precision import bf16_native
from notewave.errors import DataError
from notewave.symbolic.model import MidiLM
from notewave.symbolic.tokenizer import MidiTokenizer
from notewave.symbolic.train import train_symbolic


@pytest.fixture()
def small_data(tmp_path, jsb_test_files):
    for split, files in (("train", jsb_test_files[:6]), ("valid", jsb_test_files[6:8])):
        (tmp_path / "data" / split).mkdir(parents=True)
        for f in files:
            shutil.copy(f, tmp_path / "data" / split / f.name)
    return tmp_path / "data"


def test_train_cli_then_resume(small_data, tmp_path):
    run = tmp_path / "run"
    common = ["train", "symbolic", "--data", f"{small_data}:bach", "--out", str(run), "--config", "tiny"]
    common += ["--batch-size", "2", "--seq-len", "128", "--eval-every", "2", "--transpose", "1"]
    assert main([*common, "--steps", "4"]) == 0
    first = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in first] == [2, 4]
    assert first[-1]["val_loss"] < first[0]["train_loss"]  # it learns (from ~ln(vocab) = 6.5 nats)
    model = MidiLM.from_pretrained(run / "last")
    assert MidiTokenizer.load(run / "last").styles == ["bach"]
    assert main([*common, "--steps", "6", "--resume"]) == 0
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    resumed = MidiLM.from_pretrained(run / "last")
    assert resumed.checkpoint_config["training"]["step"] == 6
    assert not torch.equal(resumed.head.weight, model.head.weight)
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_bf16_training_and_missing_data(small_data, tmp_path):
    """Asked for bf16, training uses it where this CPU computes bf16 natively, else fp32 (warned)."""
    native = bf16_native(torch.device("cpu"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train_symbolic(
            [f"{small_data}:bach"],
            tmp_path / "bf16",
            config="tiny",
            steps=2,
            batch_size=2,
            seq_len=64,
            precision="bf16",
            eval_every=2,
            shifts=(0,),
        )
    assert summary["precision"] == ("bf16" if native else "fp32")
    assert native or any("fp32" in str(w.message) for w in caught)
    assert summary["steps"] == 2 and summary["best_val_nll_per_token"] < 7.0
    with pytest.raises(DataError, match="not found"):
        train_symbolic([str(tmp_path / "nowhere")], tmp_path / "x", config="tiny", steps=1)


def test_ddp_two_cpu_processes_with_gloo(small_data, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        "-m",
        "notewave.cli",
        "train",
        "symbolic",
        "--data",
        f"{small_data}:bach",
        "--out",
        str(run),
        "--config",
        "tiny",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--seq-len",
        "64",
        "--eval-every",
        "2",
        "--transpose",
        "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2]  # written once, by rank 0
    assert MidiLM.from_pretrained(run / "last").checkpoint_config["training"]["step"] == 2
