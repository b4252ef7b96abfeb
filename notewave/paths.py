"""Where notewave finds its shipped data and default checkpoints."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_SYMBOLIC_CHECKPOINT = DATA_DIR / "checkpoints" / "composer"
JSB_MIDI_DIR = DATA_DIR / "jsb"
DEFAULT_AUDIO_CHECKPOINT = DATA_DIR / "checkpoints" / "audio"
DEFAULT_CODEC_CHECKPOINT = DATA_DIR / "checkpoints" / "codec"
DEFAULT_TRANSCRIBER_CHECKPOINT = DATA_DIR / "checkpoints" / "transcriber"
