import pytest
from symusic import Score

from notewave.cli import main
from notewave.errors import ConditioningError, MidiError
from notewave.symbolic.generate import first_bars

BAR = 4 * 480  # ticks of a 4/4 bar in the shipped chorales (480 ticks per quarter)


def notes_of(score: Score) -> list[tuple[int, int, int, int]]:
    return [(i, n.time, n.duration, n.pitch) for i, t in enumerate(score.tracks) for n in t.notes]


def test_continuation_keeps_the_prompt_layout_on_the_beat_grid(chorales_model, jsb_test_files):
    original = Score(str(jsb_test_files[0]))
    out = chorales_model.continue_midi(original, bars=2, prompt_bars=4, seed=1, style="bach")
    prompt = first_bars(original, 4)
    assert [t.name for t in out.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [t.program for t in out.tracks] == [19, 19, 19, 19]
    assert out.ticks_per_quarter == 480
    assert [(t.time, t.mspq) for t in out.tempos] == [(t.time, t.mspq) for t in original.tempos]
    assert [(s.numerator, s.denominator) for s in out.time_signatures] == [(4, 4)]
    old = [n for n in notes_of(out) if n[1] < 4 * BAR]
    new = [n for n in notes_of(out) if n[1] >= 4 * BAR]
    assert old == notes_of(prompt)  # the prompt is kept note for note
    assert len(new) >= 8, "two bars of four-part chorale should hold several notes"
    assert all(4 * BAR <= t < 6 * BAR and t % 60 == 0 for _, t, _, _ in new)  # on the 32nd-note grid
    for voice in range(4):
        assert any(n[0] == voice for n in new), f"voice {voice} got no notes"
    soprano = [p for v, _, _, p in new if v == 0]
    bass = [p for v, _, _, p in new if v == 3]
    assert sum(soprano) / len(soprano) > sum(bass) / len(bass)  # voices keep their registers


def test_same_seed_same_music_other_seed_other_music(chorales_model, jsb_test_files):
    def run(seed):
        return notes_of(
            chorales_model.continue_midi(jsb_test_files[5], bars=1, prompt_bars=3, seed=seed, style="bach")
        )

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_prompt_longer_than_the_context_keeps_the_last_window(chorales_model, jsb_test_files):
    longest = max(jsb_test_files, key=lambda p: Score(str(p)).note_num())
    score = Score(str(longest))
    assert len(chorales_model.tokenizer.encode(score)) > chorales_model.model.context
    out = chorales_model.continue_midi(score, bars=1, seed=0, style="bach")
    end = max(t.end() for t in score.tracks)
    assert out.note_num() > score.note_num()
    assert min(n.time for t in out.tracks for n in t.notes[len(score.tracks[0].notes) :] if True) >= 0
    assert all(n.time >= end - end % BAR for t in out.tracks for n in t.notes if n.time >= end)


def test_unknown_style_and_bad_prompts(chorales_model, tmp_path):
    with pytest.raises(ConditioningError, match="unknown style 'mozart'"):
        chorales_model.continue_midi("data/jsb/test/jsb_test_000.mid", bars=1, style="mozart")
    drums = Score(480)
    from symusic import Note, Track

    track = Track(name="kit", program=0, is_drum=True)
    track.notes.append(Note(0, 240, 36, 100))
    drums.tracks.append(track)
    with pytest.raises(MidiError, match="only drum notes"):
        chorales_model.continue_midi(drums, bars=1)


def test_cli_generate_writes_midi_and_wav(tmp_path, capsys):
    out, wav = tmp_path / "out.mid", tmp_path / "out.wav"
    args = ["generate", "--prompt", "data/jsb/test/jsb_test_010.mid", "--prompt-bars", "2", "--bars", "1"]
    assert (
        main([*args, "--out", str(out), "--wav", str(wav), "--style", "bach", "--sample-rate", "16000"]) == 0
    )
    assert Score(str(out)).note_num() > Score("data/jsb/test/jsb_test_010.mid").clip(0, 2 * BAR).note_num()
    import soundfile as sf

    info = sf.info(str(wav))
    assert info.samplerate == 16000 and info.duration > 3 * BAR / 480 * 0.75  # 3 bars at 80 BPM, 4/4
    assert str(out) in capsys.readouterr().out


def _bad_inputs(tmp_path):
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x04\x01\xe0MTrk\xff\xff\xff\xffjunk")
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    no_tracks = tmp_path / "no_tracks.mid"
    Score(480).dump_midi(str(no_tracks))
    text = tmp_path / "notes.txt"
    text.write_text("these are not MIDI notes")
    return [corrupt, empty, no_tracks, text, tmp_path / "missing.mid"]


def test_cli_bad_inputs_give_one_line_errors_and_no_output(tmp_path, capsys):
    for bad in _bad_inputs(tmp_path):
        out = tmp_path / f"{bad.stem}_out.mid"
        assert main(["generate", "--prompt", str(bad), "--bars", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("notewave: error:") and bad.name in err and "Traceback" not in err
        assert not out.exists()


def test_cli_missing_and_truncated_checkpoints(tmp_path, capsys):
    import shutil

    from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT

    out = tmp_path / "out.mid"
    prompt = "data/jsb/test/jsb_test_000.mid"
    assert (
        main(["generate", "--prompt", prompt, "--out", str(out), "--checkpoint", str(tmp_path / "nope")]) == 2
    )
    assert "checkpoint folder not found" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(DEFAULT_SYMBOLIC_CHECKPOINT, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert main(["generate", "--prompt", prompt, "--out", str(out), "--checkpoint", str(broken)]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err and not out.exists()
    (broken / "tokenizer.json").unlink()
    shutil.copy(DEFAULT_SYMBOLIC_CHECKPOINT / "model.safetensors", weights)
    assert main(["generate", "--prompt", prompt, "--out", str(out), "--checkpoint", str(broken)]) == 2
    assert "tokenizer" in capsys.readouterr().err


def _in_meter(path, numerator: int, denominator: int) -> Score:
    """A real chorale's notes under another time signature (bar lines move, notes stay)."""
    from symusic import TimeSignature

    score = Score(str(path))
    score.time_signatures = [TimeSignature(0, numerator, denominator)]
    return score


@pytest.mark.parametrize("meter", [(3, 4), (6, 8)])
def test_supported_meters_continue_on_the_prompts_bar_grid(chorales_model, jsb_test_files, meter):
    prompt = first_bars(_in_meter(jsb_test_files[0], *meter), 3)
    bar = 480 * 4 * meter[0] // meter[1]  # bar lines from the prompt's own time signature
    last_off = max(t.end() for t in prompt.tracks)
    start = -(-last_off // bar) * bar  # the first bar line at or after the prompt's last note-off
    out = chorales_model.continue_midi(prompt, bars=2, seed=1, style="bach")
    assert [(s.numerator, s.denominator) for s in out.time_signatures] == [meter]
    new = [n for t in out.tracks for n in t.notes if n.time >= last_off]
    assert len(new) >= 4 and all((n.time - start) % 30 == 0 for n in new)  # 64th-note grid from the bar line
    assert all(start <= n.time < start + 2 * bar and n.end <= start + 2 * bar for n in new)  # exactly 2 bars
    assert any(n.time < start + bar for n in new) and any(n.time >= start + bar for n in new)  # both bars
    assert [n for t in out.tracks for n in t.notes if n.time < last_off] == [
        n for t in prompt.tracks for n in t.notes
    ]


def test_a_meter_the_tokenizer_lacks_is_refused_before_sampling(
    chorales_model, jsb_test_files, tmp_path, capsys
):
    from notewave.errors import TokenizerError

    assert (7, 8) not in chorales_model.tokenizer.time_signatures
    prompt = tmp_path / "seven_eight.mid"
    _in_meter(jsb_test_files[0], 7, 8).dump_midi(str(prompt))
    with pytest.raises(TokenizerError, match=r"seven_eight.mid: time signature 7/8 .* supported: 1/4, .*6/8"):
        chorales_model.continue_midi(prompt, bars=2, style="bach")
    out = tmp_path / "out.mid"
    assert main(["generate", "--prompt", str(prompt), "--bars", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "7/8" in err and "3/4, 4/4" in err and not out.exists()
