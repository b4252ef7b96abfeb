"""A real training run, SIGKILLed four times at different moments and resumed each time.

The run is ``python -m notewave.cli train symbolic`` (tiny model, real JSB chorales) in a
subprocess. To hit the short windows of a checkpoint write reliably, the child's
``os.rename`` pauses at one chosen point of each ``last/`` write (the kill itself is a real
SIGKILL): while a half-written ``.last.tmp-*`` folder exists, between the two renames of
the swap (no ``last/`` on disk at all), and after the swap before the old copy is deleted.
The fourth kill comes 0.1 s after that run's first log record (during training, validation or a
save), and the fifth run finishes.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from notewave.core.checkpoint import read_checkpoint
from notewave.symbolic.model import MidiLM

STEPS = 16
PAUSE_S = 0.5

CHILD = r"""
import os, sys, time
pause, delay = os.environ.get("NW_TEST_PAUSE", ""), float(os.environ.get("NW_TEST_PAUSE_S", "0"))
def pausing(real):
    def rename(src, dst, *args, **kwargs):
        s, d = os.path.basename(os.fspath(src)), os.path.basename(os.fspath(dst))
        if pause == "writing" and s.startswith(".last.") and not s.startswith((".last.old-", ".last.new-")):
            time.sleep(delay)  # a temporary folder is about to be published
        real(src, dst, *args, **kwargs)
        if (pause == "swapping" and d.startswith(".last.old-")) or (pause == "swapped" and d == "last"):
            time.sleep(delay)
    return rename
os.rename, os.replace = pausing(os.rename), pausing(os.replace)
from notewave.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _hidden(run) -> list[str]:
    return sorted(p.name for p in run.iterdir() if p.name.startswith(".")) if run.is_dir() else []


def _logged_steps(run) -> list[int]:
    log = run / "log.jsonl"
    if not log.is_file():
        return []
    steps = []
    for line in log.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:
            pass  # a record torn by the kill
    return steps


def _moment(run, pause: str, logged_before: int) -> bool:
    """Whether the child is at the moment where the kill of this round should hit."""
    hidden, last = _hidden(run), (run / "last").is_dir()
    if pause == "writing":
        return last and any(n.startswith(".last.") and not n.startswith(".last.old-") for n in hidden)
    if pause == "swapping":
        return not last and any(n.startswith(".last.old-") for n in hidden)
    if pause == "swapped":
        return last and any(n.startswith(".last.old-") for n in hidden)
    return max(_logged_steps(run), default=0) > logged_before  # this run has logged a step


def test_sigkill_at_any_moment_then_resume(tmp_path, jsb_test_files):
    data = tmp_path / "data"
    for split, files in (("train", jsb_test_files[:8]), ("valid", jsb_test_files[8:10])):
        (data / split).mkdir(parents=True)
        for f in files:
            shutil.copy(f, data / split / f.name)
    run = tmp_path / "run"
    cli = ["train", "symbolic", "--data", f"{data}:bach", "--out", str(run), "--config", "tiny"]
    cli += ["--steps", str(STEPS), "--eval-every", "2", "--batch-size", "2", "--seq-len", "64"]
    cli += ["--transpose", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NW_TEST_PAUSE_S": str(PAUSE_S)}
    output = tmp_path / "child.txt"
    rounds = ["swapping", "writing", "swapped", "anytime", None]
    for index, pause in enumerate(rounds):
        args = cli + (["--resume"] if index else [])
        with open(output, "w") as out:
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, *args],
                env={**env, "NW_TEST_PAUSE": pause or ""},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            deadline, logged = time.monotonic() + 60, max(_logged_steps(run), default=0)
            while pause is not None and child.poll() is None and not _moment(run, pause, logged):
                assert time.monotonic() < deadline, f"round {pause}: moment never came"
                time.sleep(0.005)
            if pause == "anytime":
                time.sleep(0.1)  # somewhere in the next steps, evaluations or saves
            if pause is not None:
                assert child.poll() is None, f"round {pause}: finished early\n{output.read_text()[-2000:]}"
                child.send_signal(signal.SIGKILL)
            code = child.wait(timeout=60)
        log = output.read_text()[-2000:]
        if pause is None:
            assert code == 0, log
        else:
            assert code == -signal.SIGKILL, log
            if pause in ("swapping", "writing", "swapped"):
                assert _hidden(run), f"round {pause}: the kill should leave hidden leftovers"
            if pause == "swapping":
                assert not (run / "last").exists()  # the state that used to block --resume
    steps = _logged_steps(run)
    assert steps == sorted(set(steps)) and steps[-1] == STEPS, steps
    assert steps == list(range(2, STEPS + 1, 2))
    model = MidiLM.from_pretrained(run / "last")
    assert model.checkpoint_config["training"]["step"] == STEPS
    assert read_checkpoint(run / "best")[1]["training"]["step"] <= STEPS
    assert _hidden(run) == [], _hidden(run)
