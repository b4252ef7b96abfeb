"""Shared fixtures: the shipped real data and small real models."""

from __future__ import annotations

from pathlib import Path

import pytest

from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT, JSB_MIDI_DIR, PROJECT_ROOT

SHARED_JSB_JSON = PROJECT_ROOT.parent / "shared" / "data" / "jsb_chorales" / "Jsb16thSeparated.json"


@pytest.fixture(scope="session")
def jsb_test_files() -> list[Path]:
    """The 77 shipped JSB test-split chorales (real Bach, converted by `notewave data jsb`)."""
    files = sorted((JSB_MIDI_DIR / "test").glob("*.mid"))
    assert len(files) == 77, "the shipped test split is missing: run `notewave data jsb --splits test`"
    return files


@pytest.fixture(scope="session")
def chorales_model():
    """The shipped default MIDI LM with its tokenizer (trained on the JSB train split)."""
    from notewave.pipelines.composer import Composer

    return Composer.from_pretrained(DEFAULT_SYMBOLIC_CHECKPOINT)


@pytest.fixture(scope="session")
def tiny_model():
    """An untrained tiny MIDI LM with the real tokenizer (style 'bach'), as a Composer."""
    import torch

    from notewave.pipelines.composer import Composer
    from notewave.symbolic.model import MidiLM, config_for
    from notewave.symbolic.tokenizer import MidiTokenizer

    torch.manual_seed(0)
    tokenizer = MidiTokenizer(["bach"])
    return Composer(MidiLM(config_for("tiny", tokenizer)).eval(), tokenizer)


def pytest_terminal_summary(terminalreporter) -> None:
    """The fuzz counts (cases, accepted, rejected cleanly) per input kind, when any case ran.

    Read from ``$NOTEWAVE_FUZZ_REPORT`` (written by every worker process) or, without it, from
    this process's counter.
    """
    import json
    import os
    from collections import Counter

    from tests.reliability.harness import COUNTS

    counts: Counter[tuple[str, str]] = Counter()
    folder = os.environ.get("NOTEWAVE_FUZZ_REPORT")
    if folder and Path(folder).is_dir():
        for path in Path(folder).glob("counts-*.jsonl"):
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                counts[(row["kind"], row["outcome"])] += 1
    else:
        counts = COUNTS
    if not counts:
        return
    kinds = sorted({kind for kind, _ in counts})
    write = terminalreporter.write_line
    write("")
    write("fuzz cases (every one ended in success or a one-line NotewaveError naming the input):")
    write(f"{'input / entry point':60s} {'cases':>7s} {'accepted':>9s} {'rejected':>9s}")
    for kind in kinds:
        a, r = counts[(kind, "accepted")], counts[(kind, "rejected")]
        write(f"{kind:60s} {a + r:7d} {a:9d} {r:9d}")
    total_a = sum(v for (_, o), v in counts.items() if o == "accepted")
    total_r = sum(v for (_, o), v in counts.items() if o == "rejected")
    write(f"{'total':60s} {total_a + total_r:7d} {total_a:9d} {total_r:9d}")
