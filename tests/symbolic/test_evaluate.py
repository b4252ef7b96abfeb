import json
import math
import shutil

from symusic import Note, Score

from notewave.cli import main
from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT
from notewave.symbolic.stats import note_statistics, pitch_class_entropy, scale_consistency


def test_eval_cli_reports_nll_and_statistics(tmp_path, jsb_test_files, capsys):
    split = tmp_path / "data" / "test"
    split.mkdir(parents=True)
    for f in jsb_test_files[:3]:
        shutil.copy(f, split / f.name)
    args = [
        "eval",
        "symbolic",
        "--checkpoint",
        str(DEFAULT_SYMBOLIC_CHECKPOINT),
        "--data",
        str(tmp_path / "data"),
    ]
    assert main([*args, "--samples", "1", "--bars", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"nll_per_token", "nll_per_note", "tokens", "notes", "continuations"}
    assert result["notes"] == sum(Score(str(f)).note_num() for f in jsb_test_files[:3])
    # A trained model is far better than uniform guessing over the vocabulary (ln 648 = 6.5 nats).
    assert 0 < result["nll_per_token"] < 1.5
    assert math.isclose(result["nll_per_note"] * result["notes"], result["nll_per_token"] * result["tokens"])
    real, generated = result["continuations"]["real"], result["continuations"]["generated"]
    assert (
        set(real)
        == set(generated)
        == {"pitch_class_entropy", "scale_consistency", "polyphony", "notes_per_bar"}
    )
    assert 2.0 < real["pitch_class_entropy"] < 3.6 and real["scale_consistency"] > 0.8


def test_statistics_on_known_inputs():
    c_major = [Note(i * 120, 120, p, 80) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]
    assert scale_consistency(c_major) == 1.0
    assert math.isclose(pitch_class_entropy([Note(0, 1, 60, 80), Note(1, 1, 67, 80)]), 1.0)
    score = Score(480)
    from symusic import Track

    track = Track(program=0)
    for n in [Note(0, 480, 60, 80), Note(0, 480, 64, 80), Note(0, 960, 67, 80)]:
        track.notes.append(n)
    score.tracks.append(track)
    stats = note_statistics(score, bars=1)
    assert stats["notes_per_bar"] == 3 and stats["polyphony"] == 2.0  # 3 notes for a beat, then 1 for a beat
