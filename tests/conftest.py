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
