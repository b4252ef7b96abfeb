"""``notewave eval symbolic``: likelihood on a data split and statistics of generated continuations.

NLL is measured in nats over every REMI token of every piece (windows of the model's
context that start on bar lines, each token scored once; conditioning tokens are not
scored). ``nll_per_note`` divides the same total by the number of notes, which makes
models with different tokenizations (e.g. BPE) comparable.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from notewave.core.midi import load_score
from notewave.paths import JSB_MIDI_DIR
from notewave.symbolic.data import TokenDataset, midi_files
from notewave.symbolic.generate import bar_lines, continue_midi
from notewave.symbolic.model import MidiLM
from notewave.symbolic.stats import note_statistics
from notewave.symbolic.tokenizer import MidiTokenizer
from notewave.symbolic.train import mean_nll


def split_nll(
    model: MidiLM, tok: MidiTokenizer, files: list[Path], style: str | None = None
) -> dict[str, float]:
    """NLL per token and per note (nats) of ``files``, with token and note counts."""
    data = TokenDataset(files, tok, style, (0,), progress=False)
    total, count = mean_nll(model, data.eval_windows(model.context))
    notes = sum(p.notes for p in data.pieces)
    return {"nll_per_token": total / count, "nll_per_note": total / notes, "tokens": count, "notes": notes}


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys() if rows else []
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def continuation_statistics(
    model: MidiLM,
    tok: MidiTokenizer,
    files: list[Path],
    samples: int = 10,
    prompt_bars: int = 4,
    bars: int = 4,
    seed: int = 0,
    style: str | None = None,
    **sampling: Any,
) -> dict[str, dict[str, float]]:
    """Statistics of ``bars``-bar continuations of the first ``prompt_bars`` bars of pieces,
    next to the same statistics of the real following bars of the same pieces."""
    generated, real = [], []
    usable = [f for f in files if len(bar_lines(load_score(f), load_score(f).end())) > prompt_bars + bars]
    for index, path in enumerate(tqdm(usable[:samples], desc="samples")):
        score = load_score(path)
        lines = bar_lines(score, score.end())
        cut, stop = lines[prompt_bars], lines[prompt_bars + bars]
        out = continue_midi(
            model, tok, score, bars=bars, prompt_bars=prompt_bars, seed=seed + index, style=style, **sampling
        )
        generated.append(note_statistics(out, cut, None, bars))
        real.append(note_statistics(score, cut, stop, bars))
    return {"generated": _mean(generated), "real": _mean(real), "pieces": len(generated)}


def evaluate_symbolic(
    checkpoint: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    split: str = "test",
    samples: int = 10,
    bars: int = 4,
    seed: int = 0,
    style: str | None = None,
    temperature: float = 1.0,
    top_p: float | None = 0.95,
) -> dict[str, Any]:
    """NLL of ``data/split`` and statistics of continuations sampled with ``temperature`` and
    ``top_p``, as a JSON-able dict.

    Raises:
        CheckpointError: the checkpoint cannot be loaded.
        DataError: the split folder is missing or has no MIDI files.
    """
    model, tok = MidiLM.from_pretrained(checkpoint), MidiTokenizer.load(checkpoint)
    if style is None and tok.styles:
        style = tok.styles[0]
    files = midi_files(Path(data or JSB_MIDI_DIR) / split)
    torch.manual_seed(seed)
    result: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "split": split,
        "files": len(files),
        "style": style,
    }
    result.update(split_nll(model, tok, files, style))
    result["bits_per_note"] = result["nll_per_note"] / math.log(2)
    if samples:
        result["sampling"] = {"temperature": temperature, "top_p": top_p}
        result["continuations"] = continuation_statistics(
            model,
            tok,
            files,
            samples,
            bars=bars,
            seed=seed,
            style=style,
            temperature=temperature,
            top_p=top_p,
        )
    return result
