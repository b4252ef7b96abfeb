"""Round trips with either synthesis engine (``notewave eval roundtrip --engine``): the shipped transcriber
on TiMidity++/Freepats renders of held-out JSB chorales, a multi-track piece whose drums are rendered but
are no reference notes, and the engine's errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from notewave.bridge.roundtrip import (
    RENDER_RATE,
    TAIL_SECONDS,
    evaluate_roundtrip,
    excerpt,
    heldout_pieces,
    note_rows,
    render_excerpt,
    roundtrip_piece,
)
from notewave.bridge.soundfont import list_soundfonts
from notewave.bridge.timidity import DEFAULT_CONFIG
from notewave.cli import main
from notewave.errors import ConfigError, RenderError
from notewave.paths import DATA_DIR, DEFAULT_TRANSCRIBER_CHECKPOINT

SECONDS = 4.0
BAND = DATA_DIR / "examples" / "freedoom2_D_COUNT2.mid"  # 12 tracks, one of them drums
# The shipped transcriber (trained on FluidSynth renders only) on the first 4 s of jsb_test_000/001
# rendered by TiMidity++ with Freepats: measured onset F1 0.464 and 0.471 (FluidSynth/FluidR3_GM: 0.64,
# 0.78). The floor fails a broken render (silence, wrong timing) or transcription.
TIMIDITY_F1_FLOOR = 0.25

has_timidity = shutil.which("timidity") is not None and DEFAULT_CONFIG.is_file()
needs_all = pytest.mark.skipif(
    not has_timidity
    or not list_soundfonts()
    or not (DEFAULT_TRANSCRIBER_CHECKPOINT / "model.safetensors").is_file(),
    reason="timidity/freepats, a SoundFont or the shipped transcriber missing",
)


@needs_all
def test_timidity_round_trip_of_two_chorales(tmp_path: Path, capsys) -> None:
    out = tmp_path / "t.json"
    argv = ["eval", "roundtrip", "--engine", "timidity", "--pieces", "2", "--seconds", str(SECONDS)]
    assert main([*argv, "--json", str(out)]) == 0
    assert f"timidity: TiMidity config {DEFAULT_CONFIG}" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["engine"] == "timidity" and data["soundfont"] == str(DEFAULT_CONFIG)
    assert [Path(p["piece"]).name for p in data["pieces"]] == ["jsb_test_000.mid", "jsb_test_001.mid"]
    for piece in data["pieces"]:
        assert piece["transcribed_notes"] > 0 and SECONDS < piece["audio_seconds"] < SECONDS + 3
    assert data["mean"]["f1"] >= TIMIDITY_F1_FLOOR, data["mean"]
    fluid = roundtrip_piece(heldout_pieces(None, 1)[0], SECONDS)
    timid = roundtrip_piece(heldout_pieces(None, 1)[0], SECONDS, engine="timidity")
    assert fluid.audio.shape == timid.audio.shape == (1, timid.audio.shape[1])  # same length, other sound
    assert np.abs(fluid.audio - timid.audio).max() > 0.05
    assert fluid.reference.note_num() == timid.reference.note_num()


@needs_all
@pytest.mark.parametrize("engine", ["fluidsynth", "timidity"])
def test_drums_are_rendered_but_are_no_reference_notes(engine: str) -> None:
    trip = roundtrip_piece(BAND, 6.0, engine=engine)
    pitched = [t for t in trip.reference.tracks if not t.is_drum]
    (drums,) = [t for t in trip.reference.tracks if t.is_drum]
    assert drums.note_num() > 10 and trip.result.reference_notes == sum(t.note_num() for t in pitched)
    assert trip.result.reference_notes == len(note_rows(trip.reference))
    last_off = max(float(n.end) for t in trip.reference.tracks for n in t.notes)
    assert trip.audio.shape == (1, round((last_off + TAIL_SECONDS) * RENDER_RATE))
    without = excerpt(BAND, 6.0)
    without.tracks = [t for t in without.tracks if not t.is_drum]
    quiet, _ = render_excerpt(without, engine)
    n = min(quiet.shape[1], trip.audio.shape[1])
    diff = float(np.sqrt(np.mean(np.square(trip.audio[0, :n] - quiet[0, :n]))))
    assert diff > 0.2 * float(np.sqrt(np.mean(np.square(trip.audio)))), diff  # the drums are in the audio


def test_engine_errors(tmp_path: Path, monkeypatch) -> None:
    piece = heldout_pieces(None, 1)
    with pytest.raises(ConfigError, match="engine"):
        evaluate_roundtrip(piece, engine="sox", progress=False)
    with pytest.raises(ConfigError, match="engine"):
        roundtrip_piece(piece[0], engine="sox")
    with pytest.raises(SystemExit):
        main(["eval", "roundtrip", "--engine", "sox"])
    if has_timidity:
        with pytest.raises(RenderError, match="not found"):
            evaluate_roundtrip(piece, soundfont=tmp_path / "no.cfg", engine="timidity", progress=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RenderError, match="apt-get install timidity freepats"):
        evaluate_roundtrip(piece, engine="timidity", progress=False)


def test_zero_length_notes_are_scored_not_refused() -> None:
    from notewave.bridge.roundtrip import score_notes

    ref = np.array([[1.0, 1.0, 60.0], [2.0, 2.5, 62.0]])  # a note-on and note-off at one tick: still heard
    est = np.array([[1.02, 1.3, 60.0], [2.0, 2.0, 62.0]])
    scores = score_notes(ref, est)
    assert scores.f1 == 1.0 and scores.f1_with_offsets == 0.0
    assert score_notes(ref, est[:1]).recall == 0.5
