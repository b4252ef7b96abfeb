import pytest
import torch

from notewave.core.checkpoint import load_state, read_checkpoint, write_checkpoint
from notewave.core.io import atomic_open
from notewave.errors import CheckpointError


def test_round_trip_and_atomic_replace(tmp_path):
    layer = torch.nn.Linear(3, 2)
    folder = write_checkpoint(tmp_path / "ckpt", layer.state_dict(), {"kind": "test", "n": 1})
    write_checkpoint(folder, layer.state_dict(), {"kind": "test", "n": 2})  # replaces the folder
    tensors, config = read_checkpoint(folder)
    assert config == {"kind": "test", "n": 2}
    other = torch.nn.Linear(3, 2)
    load_state(other, tensors, folder)
    torch.testing.assert_close(other.weight, layer.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary folders left


def test_missing_truncated_and_mismatched_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "nothing")
    folder = write_checkpoint(tmp_path / "ckpt", torch.nn.Linear(3, 2).state_dict(), {"kind": "test"})
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(folder)
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        read_checkpoint(folder)
    good = write_checkpoint(tmp_path / "good", torch.nn.Linear(3, 2).state_dict(), {})
    tensors, _ = read_checkpoint(good)
    with pytest.raises(CheckpointError, match="does not match"):
        load_state(torch.nn.Linear(4, 2), tensors, good)


def test_atomic_open_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from notewave.core.io import default_mode

    with atomic_open(tmp_path / "out.txt") as handle:
        handle.write("x")
    folder = write_checkpoint(tmp_path / "ckpt", torch.nn.Linear(2, 2).state_dict(), {})
    assert stat.S_IMODE(os.stat(tmp_path / "out.txt").st_mode) == default_mode(0o666)
    assert stat.S_IMODE(os.stat(folder).st_mode) == default_mode(0o777)
    for name in ("model.safetensors", "config.json"):
        assert stat.S_IMODE(os.stat(folder / name).st_mode) == default_mode(0o666), name
