"""Checkpoint averaging (``notewave.core.average`` and ``notewave checkpoint average``) on the shipped
transcriber: a checkpoint averaged with itself transcribes a real FluidSynth render note for note as the
original, weights give the weighted mean, integer counters come from the first source, and mismatched
or bad inputs fail in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from notewave.bridge.soundfont import list_soundfonts
from notewave.cli import main
from notewave.core.average import average_checkpoints
from notewave.core.checkpoint import read_checkpoint, write_checkpoint
from notewave.errors import CheckpointError, ConfigError
from notewave.paths import DEFAULT_TRANSCRIBER_CHECKPOINT, JSB_MIDI_DIR

SHIPPED = DEFAULT_TRANSCRIBER_CHECKPOINT


@pytest.mark.skipif(not list_soundfonts(), reason="no SoundFont installed")
def test_a_checkpoint_averaged_with_itself_transcribes_the_same(tmp_path) -> None:
    from notewave.bridge.roundtrip import excerpt, render_excerpt
    from notewave.bridge.transcription.transcribe import transcribe

    out = average_checkpoints([SHIPPED, SHIPPED], tmp_path / "soup")
    tensors, config = read_checkpoint(out)
    original, original_config = read_checkpoint(SHIPPED)
    for name, tensor in original.items():
        assert torch.equal(tensors[name], tensor), name
    assert config["average"]["sources"] == [str(SHIPPED)] * 2 and config["average"]["weights"] == [0.5, 0.5]
    assert {k: v for k, v in config.items() if k != "average"} == original_config
    wav, rate = render_excerpt(excerpt(JSB_MIDI_DIR / "test" / "jsb_test_000.mid", 4.0))
    ours, theirs = transcribe(wav, rate, checkpoint=out), transcribe(wav, rate, checkpoint=SHIPPED)
    notes = [(n.time, n.duration, n.pitch) for n in ours.tracks[0].notes]
    assert len(notes) > 10 and notes == [(n.time, n.duration, n.pitch) for n in theirs.tracks[0].notes]


def test_weighted_mean_and_integer_counters(tmp_path) -> None:
    original, config = read_checkpoint(SHIPPED)
    counters = [k for k, v in original.items() if not v.is_floating_point()]
    assert counters, "the transcriber has BatchNorm step counters"
    scaled = {k: v * 3 if v.is_floating_point() else v + 7 for k, v in original.items()}
    other = write_checkpoint(tmp_path / "scaled", scaled, {**config, "training": {"note": "scaled"}})
    tensors, soup = read_checkpoint(average_checkpoints([SHIPPED, other], tmp_path / "soup", [1, 3]))
    for name, tensor in original.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensors[name], tensor * 2.5, rtol=1e-6, atol=1e-6)
        else:
            assert torch.equal(tensors[name], tensor)  # from the first source
    assert soup["average"]["weights"] == [0.25, 0.75] and soup["average"]["training"][1] == {"note": "scaled"}


def test_mismatched_and_bad_inputs_fail_in_one_line(tmp_path) -> None:
    original, config = read_checkpoint(SHIPPED)
    wider = write_checkpoint(tmp_path / "wider", original, {**config, "d_model": config["d_model"] + 8})
    with pytest.raises(CheckpointError, match="differs .* in d_model"):
        average_checkpoints([SHIPPED, wider], tmp_path / "soup")
    fewer = write_checkpoint(tmp_path / "fewer", dict(list(original.items())[1:]), config)
    with pytest.raises(CheckpointError, match="other tensors"):
        average_checkpoints([SHIPPED, fewer], tmp_path / "soup")
    quantized = {k: torch.zeros(2, dtype=torch.int8) for k in ("w",)}
    for name in ("q1", "q2"):
        write_checkpoint(tmp_path / name, quantized, {"kind": "test"})
    with pytest.raises(CheckpointError, match="quantized"):
        average_checkpoints([tmp_path / "q1", tmp_path / "q2"], tmp_path / "soup")
    with pytest.raises(ConfigError, match="at least two"):
        average_checkpoints([SHIPPED], tmp_path / "soup")
    with pytest.raises(ConfigError, match="overwrite"):
        average_checkpoints([SHIPPED, tmp_path / "wider"], tmp_path / "wider")
    with pytest.raises(ConfigError, match="weights"):
        average_checkpoints([SHIPPED, SHIPPED], tmp_path / "soup", [1, -1])
    assert not (tmp_path / "soup").exists()  # nothing written on failure


def test_cli_average(tmp_path, capsys) -> None:
    assert main(["checkpoint", "average", str(tmp_path / "soup"), str(SHIPPED), str(SHIPPED)]) == 0
    assert "averaged 2 checkpoints" in capsys.readouterr().out
    tensors, _ = read_checkpoint(tmp_path / "soup")
    assert np.isfinite(np.concatenate([v.float().flatten().numpy() for v in tensors.values()])).all()
    assert (
        main(["checkpoint", "average", str(tmp_path / "x"), str(SHIPPED), str(SHIPPED), "--weights", "a"])
        == 2
    )
    assert main(["checkpoint", "average", str(tmp_path / "x"), str(SHIPPED)]) == 2
    err = capsys.readouterr().err
    assert err.count("notewave: error:") == 2 and "Traceback" not in err


def test_cli_averages_a_checkpoint_older_than_a_config_field(tmp_path) -> None:
    """A transcriber saved before ``harmonic_channels`` existed (the shipped one of session 18) has no
    such key; a fine-tune saved since stores it as 0. The CLI compares the configs with the defaults
    filled in, so the two average; a real difference (a harmonic stack, another fmin) is refused."""
    original, config = read_checkpoint(SHIPPED)
    older_config = {k: v for k, v in config.items() if k != "harmonic_channels"}
    older = write_checkpoint(tmp_path / "older", original, older_config)
    newer = write_checkpoint(tmp_path / "newer", original, {**older_config, "harmonic_channels": 0})
    with pytest.raises(CheckpointError, match="in harmonic_channels"):
        average_checkpoints([older, newer], tmp_path / "soup")  # as stored: a difference
    assert main(["checkpoint", "average", str(tmp_path / "soup"), str(newer), str(older)]) == 0
    tensors, soup = read_checkpoint(tmp_path / "soup")
    assert all(torch.equal(tensors[k], v) for k, v in original.items())
    assert soup["harmonic_channels"] == 0
    for name, value in (("harmonic_channels", 16), ("fmin", config["fmin"] + 10.0)):
        other = write_checkpoint(tmp_path / name, original, {**older_config, name: value})
        assert main(["checkpoint", "average", str(tmp_path / "x"), str(older), str(other)]) == 2
