"""Crash safety of checkpoint writes and resume, with each kill point simulated deterministically.

A kill is simulated by raising ``SystemExit`` (a ``BaseException``: the writer's clean-up
for ordinary errors does not run, as with SIGKILL) at a chosen rename or deletion.
"""

import json
import os

import pytest
import torch

from notewave.core import checkpoint
from notewave.core.checkpoint import (
    checkpoint_complete,
    read_checkpoint,
    recover_checkpoint,
    write_checkpoint,
)
from notewave.core.distributed import Distributed
from notewave.core.train import TrainConfig, Trainer, truncate_log
from notewave.errors import CheckpointError


class Killed(SystemExit):
    pass


def _tensors(n: int) -> dict[str, torch.Tensor]:
    return {"w": torch.full((3, 2), float(n))}


def _hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _kill_at_rename(monkeypatch, index: int) -> None:
    """Raise Killed instead of the ``index``-th (0-based) os.rename."""
    real, calls = os.rename, []

    def rename(src, dst):
        calls.append((src, dst))
        if len(calls) - 1 == index:
            raise Killed()
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)


# Kill points of write_checkpoint over an existing checkpoint (n=1) while writing n=2, and the
# n that must be under `last` after recovery. Renames: 0 tmp->new, 1 last->old, 2 new->last.
KILL_POINTS = {
    "while writing files": ("extra", 1),
    "before marking the copy complete": ("rename", 0, 1),
    "before moving the old checkpoint aside": ("rename", 1, 1),
    "between the two renames": ("rename", 2, 2),
    "before deleting the old checkpoint": ("remove", 2),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_at_every_point_of_a_write_is_recovered(tmp_path, monkeypatch, point):
    target = tmp_path / "last"
    write_checkpoint(target, _tensors(1), {"n": 1})
    kind, *args = KILL_POINTS[point]
    expected = args[-1]
    extra = None
    if kind == "extra":

        def extra(folder):
            (folder / "tokenizer.json").write_text("{")
            raise Killed()

    elif kind == "rename":
        _kill_at_rename(monkeypatch, args[0])
    else:
        real_remove = checkpoint._remove

        def remove(path):
            if ".old-" in path.name:
                raise Killed()
            real_remove(path)

        monkeypatch.setattr(checkpoint, "_remove", remove)
    with pytest.raises(Killed):
        write_checkpoint(target, _tensors(2), {"n": 2}, extra=extra)
    monkeypatch.undo()
    # at every instant some complete checkpoint exists under a recoverable name
    names = [target] + [p for p in tmp_path.iterdir() if p.name.startswith((".last.new-", ".last.old-"))]
    assert any(checkpoint_complete(p) for p in names), _hidden(tmp_path)
    assert _hidden(tmp_path), "a killed write leaves hidden leftovers"
    assert recover_checkpoint(target) == target
    tensors, config = read_checkpoint(target)
    assert config == {"n": expected} and float(tensors["w"][0, 0]) == expected
    assert _hidden(tmp_path) == []
    write_checkpoint(target, _tensors(3), {"n": 3})  # and writing goes on normally
    assert read_checkpoint(target)[1] == {"n": 3} and _hidden(tmp_path) == []


def test_reader_promotes_without_cleaning_and_writer_cleans(tmp_path, monkeypatch):
    target = tmp_path / "last"
    write_checkpoint(target, _tensors(1), {"n": 1})
    _kill_at_rename(monkeypatch, 2)
    with pytest.raises(Killed):
        write_checkpoint(target, _tensors(2), {"n": 2})
    monkeypatch.undo()
    assert not target.exists()
    assert [n.split("-")[0] for n in _hidden(tmp_path)] == [".last.new", ".last.old"]
    assert read_checkpoint(target)[1] == {"n": 2}  # the newer complete copy was promoted
    assert [n.split("-")[0] for n in _hidden(tmp_path)] == [".last.old"]  # a reader does not delete
    write_checkpoint(target, _tensors(3), {"n": 3})
    assert _hidden(tmp_path) == []


def test_incomplete_and_legacy_copies(tmp_path):
    target = tmp_path / "last"
    # the layout the old writer left when killed between its renames: an unmarked temporary
    # folder (cannot be trusted) and the previous checkpoint moved aside
    write_checkpoint(tmp_path / "a", _tensors(1), {"n": 1}).rename(tmp_path / ".last.old-4242")
    write_checkpoint(tmp_path / "b", _tensors(2), {"n": 2}).rename(tmp_path / ".last.k3j2h1")
    # a newer copy marked complete whose weights were truncated must not win
    broken = write_checkpoint(tmp_path / "c", _tensors(3), {"n": 3}).rename(tmp_path / ".last.new-zz")
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    (tmp_path / ".best.tmp-x1").mkdir()  # another checkpoint's leftovers are not touched
    assert recover_checkpoint(target) == target
    assert read_checkpoint(target)[1] == {"n": 1}
    assert _hidden(tmp_path) == [".best.tmp-x1"]
    assert recover_checkpoint(tmp_path / "best") is None and _hidden(tmp_path) == []
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "best")


def test_ordinary_errors_roll_back_and_clean_up(tmp_path, monkeypatch):
    target = tmp_path / "last"
    write_checkpoint(target, _tensors(1), {"n": 1})

    def broken(folder):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_checkpoint(target, _tensors(2), {"n": 2}, extra=broken)
    real = os.rename

    def rename(src, dst):
        if str(dst) == str(target) and ".last.new-" in str(src):
            raise OSError("rename failed")
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        write_checkpoint(target, _tensors(2), {"n": 2})
    monkeypatch.undo()
    assert read_checkpoint(target)[1] == {"n": 1} and _hidden(tmp_path) == []


def test_truncate_log_drops_later_and_torn_records(tmp_path):
    log = tmp_path / "log.jsonl"
    lines = [{"step": 2}, {"note": "no step"}, {"step": 4}, {"step": 6}, {"step": 4}]
    log.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"step": 8, "val')
    assert truncate_log(log, 4) == 4
    assert [json.loads(x) for x in log.read_text().splitlines()] == lines[:3] + [{"step": 4}]
    assert truncate_log(log, 4) == 4 and _hidden(tmp_path) == []
    assert truncate_log(tmp_path / "missing.jsonl", 3) == 0


def _trainer(run, steps: int) -> Trainer:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    if (run / "last").exists() or any(p.name.startswith((".last.new-", ".last.old-")) for p in run.iterdir()):
        tensors, _ = read_checkpoint(run / "last")  # what a caller does before resuming
        model.load_state_dict(tensors)
    cfg = TrainConfig(steps=steps, batch_size=4, warmup=0, eval_every=2, save_every=2, precision="fp32")

    def batch_fn(generator):
        return torch.randn(4, 4, generator=generator)

    def loss_fn(forward, batch):
        return forward(batch).pow(2).mean()

    def eval_fn(m):
        return {"val_loss": float(m.weight.abs().sum())}

    def save_fn(m, folder, extra, info):
        write_checkpoint(folder, m.state_dict(), {"training": info}, extra=extra)

    return Trainer(model, cfg, run, batch_fn, loss_fn, eval_fn, save_fn, Distributed())


def _steps(run) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("rename_index, resumed_at", [(0, 4), (2, 6)])
def test_resume_after_a_killed_save_logs_every_step_once(tmp_path, monkeypatch, rename_index, resumed_at):
    """Kill the `last/` save of step 6 before it is marked complete (resume from step 4, whose
    log record of step 6 must go) or between its renames (resume from the promoted step 6)."""
    run = tmp_path / "run"
    run.mkdir()
    _trainer(run, 4).fit()
    trainer = _trainer(run, 8)
    trainer.resume()
    real_save = trainer.save

    def save(name):
        if name == "last" and trainer.step == 6:
            _kill_at_rename(monkeypatch, rename_index)
        return real_save(name)

    trainer.save = save
    with pytest.raises(Killed):
        trainer.run()
    monkeypatch.undo()
    assert _steps(run) == [2, 4, 6] and _hidden(run)
    resumed = _trainer(run, 8)
    resumed.resume()
    assert resumed.step == resumed_at and _steps(run) == [2, 4, 6][: resumed_at // 2]
    assert _hidden(run) == []
    result = resumed.fit()
    assert result["steps"] == 8 and _steps(run) == [2, 4, 6, 8]
    assert read_checkpoint(run / "last")[1]["training"]["step"] == 8 and _hidden(run) == []


def test_resume_without_any_checkpoint_is_a_one_line_error(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    trainer = _trainer(run, 2)
    (run / ".last.tmp-abc").mkdir()
    with pytest.raises(CheckpointError, match="is missing and no complete copy was left"):
        trainer.resume()
    assert _hidden(run) == []
