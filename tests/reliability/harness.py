"""The fuzzing harness: run one case, classify it, and enforce the contract every input must meet.

The contract (issue 8): every input ends in success or in a :class:`~notewave.errors.NotewaveError`
with a one-line message naming the file; never a traceback, a hang (each case is bounded with
``SIGALRM``), a crash, or a half-written output (no output file and no temporary leftovers after
a rejected input).

Counts of cases per kind (accepted, rejected cleanly) are appended as JSON lines to the folder in
``$NOTEWAVE_FUZZ_REPORT`` when it is set (``make test`` and ``make fuzz`` set it and print a table).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from notewave.errors import NotewaveError

# Examples per fuzz test: a few dozen to a few hundred in `make test`, many more in `make fuzz`.
SCALE = float(os.environ.get("NOTEWAVE_FUZZ_SCALE", "1"))
COUNTS: Counter[tuple[str, str]] = Counter()


def examples(n: int) -> int:
    """``n`` scaled by ``$NOTEWAVE_FUZZ_SCALE`` (at least 1)."""
    return max(1, int(n * SCALE))


class CaseTimeout(BaseException):
    """A case ran past its time bound (a hang)."""


@contextlib.contextmanager
def time_bound(seconds: int) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the main thread after ``seconds`` (SIGALRM)."""

    def expire(signum: int, frame: object) -> None:
        raise CaseTimeout(f"case ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def record(kind: str, outcome: str) -> None:
    """Count one case (``outcome``: accepted or rejected) and append it to the report folder."""
    COUNTS[(kind, outcome)] += 1
    folder = os.environ.get("NOTEWAVE_FUZZ_REPORT")
    if folder:
        with open(Path(folder) / f"counts-{os.getpid()}.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "outcome": outcome}) + "\n")


def leftovers(folder: Path) -> list[str]:
    """Hidden or temporary files an interrupted atomic write would leave in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


def check_api(kind: str, call: Callable[[], object], names: Sequence[str] = (), seconds: int = 30) -> str:
    """Run a library call on a fuzzed input; returns ``"accepted"`` or ``"rejected"``.

    A rejection must be a NotewaveError whose message is one line and names one of ``names``
    (when given). Anything else propagates and fails the test.
    """
    try:
        with time_bound(seconds), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one-line warnings (silence, trimmed melodies) are fine
            call()
    except NotewaveError as exc:
        message = str(exc)
        assert message and "\n" not in message, f"{kind}: multi-line error {message!r}"
        if names:
            assert any(n in message for n in names), f"{kind}: error does not name {names}: {message!r}"
        record(kind, "rejected")
        return "rejected"
    record(kind, "accepted")
    return "accepted"


def check_cli(
    kind: str, argv: Sequence[str], outputs: Sequence[Path] = (), names: Sequence[str] = (), seconds: int = 60
) -> str:
    """Run ``notewave ARGV`` in this process on a fuzzed input; returns ``"accepted"`` or ``"rejected"``.

    Accepted: exit 0 and every path of ``outputs`` exists. Rejected: exit 2, exactly one
    ``notewave: error:`` line naming one of ``names``, no output written and no temporary
    leftovers beside the outputs. A traceback (any other exception) propagates and fails the test.
    """
    from notewave.cli import main

    err = io.StringIO()
    with time_bound(seconds), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main([str(a) for a in argv])
    errors = [line for line in err.getvalue().splitlines() if line.startswith("notewave: error:")]
    if status == 0:
        assert not errors, f"{kind}: exit 0 with {errors}"
        assert all(p.exists() for p in outputs), f"{kind}: exit 0 but missing {outputs}"
        record(kind, "accepted")
        return "accepted"
    assert status == 2, f"{kind}: exit status {status}"
    assert len(errors) == 1, f"{kind}: expected one error line, got {err.getvalue()!r}"
    if names:
        assert any(n in errors[0] for n in names), f"{kind}: error does not name {names}: {errors[0]!r}"
    for path in outputs:
        assert not path.exists(), f"{kind}: rejected but wrote {path}"
        assert not leftovers(path.parent), f"{kind}: temporary leftovers {leftovers(path.parent)}"
    record(kind, "rejected")
    return "rejected"
