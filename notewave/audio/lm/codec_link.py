"""Which codec an audio LM reads: the codec's identity (config, weights and codes hashes), the check that
a codec is the one an LM was trained on, and where to find it beside a checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from notewave.audio.codec.model import Codec, identity_mismatch
from notewave.errors import CheckpointError
from notewave.paths import DEFAULT_CODEC_CHECKPOINT, PROJECT_ROOT


def codec_identity(codec: Any) -> dict[str, Any]:
    """What identifies a codec's codes: its config and its
    :meth:`~notewave.audio.codec.model.Codec.fingerprint` (config, weights and codes hashes)."""
    return {"config": codec.config.to_dict(), **codec.fingerprint()}


def check_codec(config: Any, codec: Any) -> dict[str, Any]:
    """Check that ``codec`` is the one an :class:`~notewave.audio.lm.model.AudioLMConfig` was trained on.

    Returns:
        The recorded identity (``config.codec``), or the codec's own when none was recorded.

    An LM may model the first ``config.num_codebooks`` of a codec with more codebooks (a codec trained
    with quantizer dropout decodes any 1..K of them); it reads main codebooks only, never those of a
    detail stream (which ``codes_hash`` does not cover).

    Raises:
        CheckpointError: fewer codebooks than the LM reads, another N or rate, or another codec
            (its codes hash where the LM recorded one, else its config or weights hash).
    """
    want, got = config.codec, codec_identity(codec)
    k = min(codec.config.num_codebooks, config.num_codebooks)  # the main stream's codebooks
    sizes = (k, codec.codebook_size, int(codec.sample_rate), float(codec.frame_rate))
    expect = (config.num_codebooks, config.codebook_size, config.sample_rate, config.frame_rate)
    if sizes != expect:
        raise CheckpointError(
            f"the codec gives (K, N, sample_rate, frame_rate) = {sizes} but the audio LM was trained "
            f"on {expect}; use the codec the LM was trained with"
        )
    key = identity_mismatch(want, got)  # codes_hash where recorded: a retrained decoder serves
    if key is not None:
        raise CheckpointError(
            f"the audio LM was trained on the codes of another codec ({key} {want[key]}, given "
            f"{got[key]}); load it with the codec it was trained with"
        )
    return want or got


def codec_candidates(path: str | os.PathLike[str], identity: dict[str, Any]) -> list[Path]:
    """Folders where the codec of the audio LM at ``path`` may be, in order of preference."""
    out = [Path(path) / "codec"]
    if identity.get("path"):
        recorded = Path(identity["path"])
        out.append(recorded if recorded.is_absolute() else PROJECT_ROOT / recorded)
    out.append(DEFAULT_CODEC_CHECKPOINT)
    return out


def load_codec_for(path: str | os.PathLike[str], identity: dict[str, Any]) -> Any:
    """The first existing codec of :func:`codec_candidates`, or ``None`` when there is none."""
    for folder in codec_candidates(path, identity):
        if (folder / "config.json").is_file():
            return Codec.from_pretrained(folder)
    return None
