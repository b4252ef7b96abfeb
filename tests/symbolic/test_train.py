"""``notewave train symbolic`` on small real data: JSB chorales (style bach) and MMA grooves (styles from
their data.json), a tiny model, resumed; pieces cached in RUN/pieces-*.npz; data-parallel on CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from notewave.cli import main
from notewave.core.precision import bf16_native
from notewave.errors import ConfigError, DataError
from notewave.pipelines.composer import Composer
from notewave.symbolic.cursor import CURSOR_ROWS
from notewave.symbolic.data import PieceSet, eval_windows, training_window
from notewave.symbolic.model import MidiLM
from notewave.symbolic.train import train_symbolic
from notewave.symbolic.vocab import Vocab


@pytest.fixture()
def jsb_data(tmp_path, jsb_test_files):
    for split, files in (("train", jsb_test_files[:5]), ("valid", jsb_test_files[5:7])):
        (tmp_path / "jsb" / split).mkdir(parents=True)
        for f in files:
            shutil.copy(f, tmp_path / "jsb" / split / f.name)
    return tmp_path / "jsb"


@pytest.fixture()
def mma_data(tmp_path, mma_dir):
    """The three rendered grooves with their data.json; one rock groove moved to valid/."""
    folder = tmp_path / "mma"
    shutil.copytree(mma_dir, folder, ignore=shutil.ignore_patterns(".cache"))
    (folder / "valid").mkdir(exist_ok=True)
    shutil.move(folder / "train" / "mma_60sRock.mid", folder / "valid" / "mma_60sRock.mid")
    return folder


def records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_train_cli_then_resume_on_chorales_and_grooves(jsb_data, mma_data, tmp_path):
    run = tmp_path / "run"
    common = ["train", "symbolic", "--data", f"{jsb_data}:bach", "--data", str(mma_data), "--out", str(run)]
    common += ["--config", "tiny", "--batch-size", "2", "--seq-len", "128", "--eval-every", "2"]
    common += ["--transpose", "1", "--val-windows", "2"]
    assert main([*common, "--steps", "4"]) == 0
    first = records(run)
    assert [r["step"] for r in first] == [2, 4]
    assert set(first[-1]["val_nll_per_note"]) == {"bach", "rock-pop"}  # per style of the valid pieces
    assert all(0 < v < 100 for v in first[-1]["val_nll_per_note"].values())
    assert first[-1]["val_loss"] < first[0]["train_loss"]  # it learns (from ~ln(472) = 6.2 nats)
    vocab = Vocab.load(run / "last")
    assert vocab.styles == ["bach", "dance-show", "rock-pop"]  # the styles of the training pieces
    composer = Composer.from_pretrained(run / "best")
    assert composer.model.context == 256 and composer.styles == vocab.styles
    train, valid = PieceSet.load(run / "pieces-train.npz"), PieceSet.load(run / "pieces-valid.npz")
    assert len(train.pieces) == 7 and len(valid.pieces) == 3
    assert sorted(s for s in train.styles) == ["bach"] * 5 + ["dance-show", "rock-pop"]
    assert sorted(valid.styles) == ["bach", "bach", "rock-pop"]
    assert any(-1 in p.programs for p in train.pieces)  # the grooves' drums
    stamp = (run / "pieces-train.npz").stat().st_mtime_ns
    model = MidiLM.from_pretrained(run / "last")
    # resume: the cached pieces are read back (the MIDI folder is not read again)
    shutil.rmtree(jsb_data / "train")
    assert main([*common, "--steps", "6", "--resume"]) == 0
    assert [r["step"] for r in records(run)] == [2, 4, 6]
    assert (run / "pieces-train.npz").stat().st_mtime_ns == stamp
    resumed = MidiLM.from_pretrained(run / "last")
    assert resumed.checkpoint_config["training"]["step"] == 6
    assert not torch.equal(resumed.head.weight, model.head.weight)
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary folders left
    # another source list rebuilds the cache
    summary = train_symbolic(
        [str(mma_data)], run, steps=8, batch_size=2, seq_len=128, eval_every=2, resume=True, progress=False
    )
    assert summary["steps"] == 8 and summary["train_pieces"] == 2
    assert json.loads((run / "pieces.json").read_text())["sources"] == [str(mma_data)]
    assert (run / "pieces-train.npz").stat().st_mtime_ns != stamp


def test_training_windows_from_real_pieces(jsb_test_files, mma_dir):
    vocab = Vocab(["bach", "rock-pop"])
    pieces = PieceSet.from_files([*jsb_test_files[:2], mma_dir / "train" / "mma_50sRock.mid"], progress=False)
    rng = np.random.default_rng(0)
    fills = 0
    for _ in range(40):
        for piece, style in zip(pieces.pieces, ["bach", "bach", "rock-pop"], strict=True):
            x, y = training_window(vocab, piece, style, 256, rng, fill_share=0.5)
            assert len(x) == len(y) == 256 and x[0] == vocab.bos_id
            assert set(y[: len(piece.programs) + 2]) == {-100}  # the header is not scored
            scored = [i for i in range(255) if y[i] != -100 and x[i + 1] != vocab.pad_id]
            assert all(x[i + 1] == y[i] for i in scored)  # next-token targets
            assert len(set(y) - {-100}) > 10
            fills += vocab["FillStart"] in x
    assert 20 < fills < 80  # a share of the windows use the bar-fill layout
    windows = eval_windows(vocab, pieces.pieces[0], "bach", 128)
    scored = [t for _, y in windows for t in y if t != -100]
    assert scored.count(vocab.bar_id) == pieces.pieces[0].bars and scored[-1] == vocab.eos_id


def test_bar_fill_training_windows_hold_all_their_fills(jsb_test_files):
    vocab = Vocab(["bach"])
    pieces = PieceSet.from_files(jsb_test_files[:2], progress=False)
    rng = np.random.default_rng(0)
    for _ in range(100):
        for piece in pieces.pieces:
            x, y = training_window(vocab, piece, "bach", 512, rng, fill_share=1.0)
            n = sum(1 for t in x if t != vocab.pad_id)
            ids = x[:n] + [y[n - 1]]  # the window's ids: inputs, then the last target
            assert ids.count(vocab["Fill"]) == ids.count(vocab["FillStart"]) == ids.count(vocab["FillEnd"])


def test_bf16_training_and_missing_data(jsb_data, tmp_path, capsys):
    """Asked for bf16, training uses it where this CPU computes bf16 natively, else fp32 (warned)."""
    native = bf16_native(torch.device("cpu"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train_symbolic(
            [f"{jsb_data}:bach"],
            tmp_path / "bf16",
            config="tiny",
            steps=2,
            batch_size=2,
            seq_len=64,
            precision="bf16",
            eval_every=2,
            shifts=(0,),
            progress=False,
        )
    assert summary["precision"] == ("bf16" if native else "fp32")
    assert native or any("fp32" in str(w.message) for w in caught)
    assert summary["steps"] == 2 and summary["best_val_nll_per_token"] < 7.0
    with pytest.raises(DataError, match="not found"):
        train_symbolic([str(tmp_path / "nowhere")], tmp_path / "x", config="tiny", steps=1)
    out = tmp_path / "y"
    argv = [
        "train",
        "symbolic",
        "--data",
        f"{tmp_path / 'nowhere'}:bach",
        "--out",
        str(out),
        "--config",
        "tiny",
    ]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("notewave: error:") and err.count("\n") == 1 and "nowhere" in err
    assert not out.exists()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("no MIDI here")
    with pytest.raises(DataError) as info:
        train_symbolic([str(tmp_path / "text")], tmp_path / "z", config="tiny", steps=1)
    assert "text" in str(info.value) and "\n" not in str(info.value)


def test_ddp_two_cpu_processes_with_gloo(jsb_data, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533"]
    cmd += ["-m", "notewave.cli", "train", "symbolic", "--data", f"{jsb_data}:bach", "--out", str(run)]
    cmd += ["--config", "tiny", "--steps", "2", "--batch-size", "2", "--seq-len", "64", "--eval-every", "2"]
    cmd += ["--transpose", "0", "--val-windows", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [r["step"] for r in records(run)] == [2]  # written once, by rank 0
    assert MidiLM.from_pretrained(run / "last").checkpoint_config["training"]["step"] == 2
    assert Vocab.load(run / "last").styles == ["bach"]


def test_cursor_model_from_init_trains_and_edits(jsb_data, jsb_test_files, tmp_path):
    """``--init`` a model without the cursor table plus ``--cursor``: the table is added, trained
    and saved; ``--harmony`` grows it; the composer continues and infills with it (decoding feeds
    the features)."""
    plain = tmp_path / "plain"
    common = ["train", "symbolic", "--data", f"{jsb_data}:bach", "--config", "tiny", "--batch-size", "2"]
    common += ["--seq-len", "128", "--eval-every", "2", "--transpose", "0", "--val-windows", "2"]
    assert main([*common, "--out", str(plain), "--steps", "2"]) == 0
    run = tmp_path / "cursor"
    assert main([*common, "--out", str(run), "--steps", "2", "--init", str(plain / "last"), "--cursor"]) == 0
    model = MidiLM.from_pretrained(run / "last")
    assert model.config.cursor and model.cursor_emb is not None
    assert model.cursor_emb.weight.abs().sum() > 0  # started at zero, moved by training
    assert main([*common, "--out", str(run), "--steps", "4", "--resume", "--cursor"]) == 0  # resumed as is
    assert MidiLM.from_pretrained(run / "last").checkpoint_config["training"]["step"] == 4
    with pytest.raises(ConfigError, match="no cursor table"):  # a resumed run keeps its parameters
        train_symbolic([f"{jsb_data}:bach"], plain, config="tiny", steps=4, resume=True, cursor=True)
    harmony = tmp_path / "harmony"  # the cursor model's table grows by the harmony rows
    assert (
        main([*common, "--out", str(harmony), "--steps", "2", "--init", str(run / "last"), "--harmony"]) == 0
    )
    grown = MidiLM.from_pretrained(harmony / "last")
    assert grown.config.harmony and grown.cursor_emb.weight[CURSOR_ROWS:].abs().sum() > 0
    composer = Composer.from_pretrained(harmony / "last")
    score = composer.continue_midi(jsb_test_files[3], bars=2, prompt_bars=2, style="bach")
    infilled = composer.infill(jsb_test_files[3], bars=(2, 2), style="bach")
    assert len(score.tracks) == len(infilled.tracks) == 4
    assert sum(len(t.notes) for t in score.tracks) > 0
