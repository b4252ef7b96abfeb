"""``notewave eval symbolic`` with a tiny untrained composer on real chorales and small band pieces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from symusic import Note, Score, Tempo, TimeSignature, Track

from notewave.cli import main
from notewave.symbolic.evaluate import JSB_NLL_TARGET, accompaniment_task
from notewave.symbolic.heldout import held_out
from notewave.symbolic.model import MidiLM, config_for
from notewave.symbolic.stats import pitch_class_entropy, polyphony
from notewave.symbolic.vocab import Vocab

CHORDS = ((60, 64, 67), (65, 69, 72), (67, 71, 74), (60, 64, 67))  # C F G C


def band_piece(shift: int, bars: int = 8) -> Score:
    """A 4/4 piece of piano chords, a bass on the roots and a kick/snare/hi-hat pattern."""
    score = Score(480)
    score.time_signatures.append(TimeSignature(0, 4, 4))
    score.tempos.append(Tempo(0, 120.0))
    piano, bass = Track(name="Piano", program=0), Track(name="Bass", program=33)
    drums = Track(name="Drums", program=0, is_drum=True)
    for bar in range(bars):
        chord = CHORDS[bar % len(CHORDS)]
        for beat in range(4):
            time = (bar * 4 + beat) * 480
            piano.notes.extend([Note(time, 480, p + shift, 80) for p in chord])
            bass.notes.append(Note(time, 480, chord[0] - 24 + shift, 90))
            drums.notes.extend([Note(time, 120, 36 if beat % 2 == 0 else 38, 100), Note(time, 120, 42, 70)])
    score.tracks.extend([piano, bass, drums])
    return score


@pytest.fixture(autouse=True)
def one_thread():
    """Decode the tiny model on one thread: its steps are too small to share, and on a machine whose
    cores are busy (a training run) more threads make them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, jsb_test_files) -> dict[str, Path]:
    """A tiny untrained checkpoint (styles bach and rock), a ``jsb`` folder with two real chorales
    and a ``band`` folder whose data.json names the style rock."""
    root = tmp_path_factory.mktemp("eval")
    torch.manual_seed(0)
    vocab = Vocab(["bach", "rock"])
    MidiLM(config_for("tiny", vocab)).save_pretrained(root / "ckpt", extra_files=vocab.save)
    (root / "jsb" / "test").mkdir(parents=True)
    for f in jsb_test_files[:2]:
        shutil.copy(f, root / "jsb" / "test" / f.name)
    (root / "band" / "test").mkdir(parents=True)
    pieces = []
    for i, shift in enumerate((0, 2)):
        band_piece(shift).dump_midi(str(root / "band" / "test" / f"band_{i}.mid"))
        pieces.append({"file": f"test/band_{i}.mid", "style": "rock"})
    (root / "band" / "data.json").write_text(json.dumps({"pieces": pieces}), encoding="utf-8")
    return {"root": root, "ckpt": root / "ckpt", "jsb": root / "jsb", "band": root / "band"}


def _run(setup, *extra: str) -> int:
    args = ["eval", "symbolic", "--checkpoint", str(setup["ckpt"]), "--data", f"{setup['jsb']}:bach"]
    return main([*args, "--data", str(setup["band"]), "--pieces", "2", "--prompt-bars", "3", *extra])


def test_eval_cli_writes_json_and_markdown_per_style(setup, capsys):
    out_json, out_md = setup["root"] / "out" / "eval.json", setup["root"] / "out" / "eval.md"
    assert _run(setup, "--bars", "2", "--json", str(out_json), "--markdown", str(out_md)) == 0
    printed = capsys.readouterr().out
    report = json.loads(out_json.read_text(encoding="utf-8"))  # strict JSON: NaN written as null

    assert set(report["nll"]) == {"bach", "rock"}
    for row in report["nll"].values():
        assert row["pieces"] == 2 and row["notes"] > 0
        # Untrained: about uniform over the vocabulary; several tokens per note.
        assert 3.0 < row["nll_per_token"] < 8.0 and row["nll_per_note"] > row["nll_per_token"]
    jsb = report["jsb_test"]
    assert jsb["style"] == "bach" and jsb["pieces"] == 2 and jsb["target"] == JSB_NLL_TARGET
    assert jsb["passed"] is False and jsb["folder"] == str(setup["jsb"] / "test")
    # the nats by token kind add up to the NLL per note; every chorale note has its Pitch, Pos, Vel, Dur
    assert abs(sum(jsb["by_kind"].values()) - jsb["nll_per_note"]) < 1e-6
    assert {"Pitch", "Pos", "Vel", "Dur", "Track", "Bar", "EOS"} <= set(jsb["by_kind"])

    edits = report["edits"]
    assert set(edits) == {"continue", "infill", "accompany"}
    for name in ("continue", "infill"):
        assert [r["style"] for r in edits[name]["rows"]] == ["bach", "rock"]
        assert [r["style"] for r in edits[name]["real_rows"]] == ["bach", "rock"]
        assert len(edits[name]["pieces"]) == 4 and not edits[name]["failures"]
        assert all(p["last_bar"] - p["first_bar"] == 2 for p in edits[name]["pieces"])
        assert all(p["tracks_kept"] for p in edits[name]["pieces"])
    # The band pieces keep drums in every real bar; the chorales have none.
    real = {r["style"]: r for r in edits["continue"]["real_rows"]}
    assert real["rock"]["drums_continued"] == 1.0 and real["bach"]["drum_pieces"] == 0
    accompany = {r["style"]: r for r in edits["accompany"]["rows"]}
    assert accompany["bach"]["accompaniments"] == accompany["rock"]["accompaniments"] == 2
    assert 0.0 < accompany["bach"]["reference_consonance"] <= 1.0
    assert accompany["rock"]["reference_consonance"] == 1.0  # the real bass plays the chord roots

    targets = [t["target"] for t in report["targets"]]
    assert targets[0] == f"JSB test NLL <= {JSB_NLL_TARGET} nats/note"
    assert any(t.startswith("continue: median density") for t in targets)
    assert any(t.startswith("infill: drums continued") for t in targets)

    markdown = out_md.read_text(encoding="utf-8")
    for text in ("| bach |", "| rock (real) |", "JSB test NLL", "## targets", "## accompany"):
        assert text in markdown
    assert "JSB test NLL" in printed and "rock (real)" in printed and str(out_json) in printed


def test_eval_nll_only_and_bad_inputs_one_line(setup, tmp_path, capsys):
    assert _run(setup, "--bars", "1", "--edits", "none", "--json", str(tmp_path / "nll.json")) == 0
    report = json.loads((tmp_path / "nll.json").read_text(encoding="utf-8"))
    assert report["edits"] == {} and set(report["nll"]) == {"bach", "rock"}
    capsys.readouterr()

    bad = {
        "checkpoint folder not found": ["--checkpoint", str(tmp_path / "missing")],
        "MIDI folder not found": ["--data", str(tmp_path / "nowhere")],
        "unknown edit 'sing'": ["--edits", "continue,sing"],
        "infill needs more prompt bars than bars": ["--bars", "3"],
        "no readable piece of at least 43 bars": ["--bars", "40", "--edits", "continue"],
        # refused before any piece is read, not once per piece
        "range margin must be an integer >= 0": ["--range-margin", "-2"],
        "key strength must be a finite number >= 0": ["--key", "-1"],
        "density strength must be a finite number >= 0": ["--density", "-0.5"],
    }
    for message, extra in bad.items():
        assert _run(setup, "--bars", "1", *extra) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("notewave: error:") and message in err, err
    assert not list(tmp_path.glob("*.md"))


def test_accompaniment_task_and_styles(setup, jsb_test_files):
    chorale = Score(str(jsb_test_files[0]))
    kept, melody, real, add = accompaniment_task(chorale)
    assert [chorale.tracks[i].name for i in kept] == melody == ["Soprano"]
    assert real == ["Alto", "Tenor", "Bass"] and add == "satb"
    band = band_piece(0)
    assert accompaniment_task(band) == ([0], ["Piano"], ["Bass"], "bass,drums")
    solo = band_piece(0)
    solo.tracks = [solo.tracks[0]]
    assert accompaniment_task(solo) is None  # one track, no drums: nothing to accompany

    # Styles from data.json, from :STYLE, else the folder name; only known styles become tokens.
    groups = held_out([str(setup["band"]), str(setup["jsb"])], "test", 1, 4, ["rock"])
    assert {s: [(h.path.name, h.token) for h in g] for s, g in groups.items()} == {
        "jsb": [(jsb_test_files[0].name, None)],
        "rock": [("band_0.mid", "rock")],
    }


def test_statistics_on_known_inputs():
    assert np.isclose(pitch_class_entropy([Note(0, 1, 60, 80), Note(1, 1, 67, 80)]), 1.0)
    notes = [Note(0, 480, 60, 80), Note(0, 480, 64, 80), Note(0, 960, 67, 80)]
    assert polyphony(notes, 120) == 2.0  # 3 notes for a beat, then 1 for a beat
