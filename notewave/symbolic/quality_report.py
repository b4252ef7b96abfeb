"""Per-style tables of composer quality measures, the issue's targets, and their rendering.

:func:`summarise` groups per-piece results (:class:`~notewave.symbolic.quality.ContinuationQuality`
and :class:`~notewave.symbolic.quality_accompaniment.AccompanimentQuality`) by style;
:func:`check_targets` checks each style's row against the targets below;
:func:`render_table` and :func:`render_targets` print them as Markdown or plain text.

Targets (continuations and infills): median density ratio >= 0.7 and no piece below 0.3,
no empty bar where the prompt's context had none, drums continued in every piece whose context
has drums (in every new bar where they play in every context bar, a groove; as often as around
otherwise: :attr:`~notewave.symbolic.quality.ContinuationQuality.drums_continued`), and mean key
cosine >= 0.8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from notewave.symbolic.quality import ContinuationQuality
from notewave.symbolic.quality_accompaniment import AccompanimentQuality

MEDIAN_DENSITY_TARGET = 0.7
MIN_DENSITY_TARGET = 0.3
KEY_COSINE_TARGET = 0.8


@dataclass(frozen=True)
class StyleSummary:
    """One style's row. A field is None when no piece of the style has what it needs."""

    style: str
    #: Continuations/infills and accompaniments counted.
    pieces: int
    accompaniments: int
    #: Median and minimum of the density ratios (new / context notes per bar).
    median_density_ratio: float | None
    min_density_ratio: float | None
    #: Share of pieces with an empty new bar although no context bar was empty.
    empty_where_prompt_had_none: float | None
    #: Pieces whose context has drums, and the share of them with drums in every new bar.
    drum_pieces: int
    drums_continued: float | None
    #: Mean key cosine over pieces whose context has pitched notes; share of pieces whose
    #: Krumhansl-Kessler keys agree, over pieces where both are known.
    mean_key_cosine: float | None
    key_agreement: float | None
    #: Mean of (generated - real) pitch-class entropy (bits) and polyphony (notes per
    #: sounding 16th), over pieces with a reference.
    entropy_delta: float | None
    polyphony_delta: float | None
    #: Mean over pieces of how far the new notes' lengths are from their track's own in the
    #: context (octaves, ``length_shift``; a track's median length, 0: as around).
    length_shift: float | None
    #: Mean share of new pitched notes inside their track's register (``in_register``).
    in_register: float | None
    #: Share of pieces (given a prompt) that kept every prompt track.
    tracks_kept: float | None
    #: Consonant beats / beats pooled over the accompaniments, and the mean reference share.
    consonance_share: float | None
    reference_consonance: float | None


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(kept)) if kept else None


def _share(flags: Sequence[bool | None]) -> float | None:
    kept = [f for f in flags if f is not None]
    return sum(kept) / len(kept) if kept else None


def _row(
    style: str, cont: Sequence[ContinuationQuality], acc: Sequence[AccompanimentQuality]
) -> StyleSummary:
    density = [q.density_ratio for q in cont]
    drums = [q.drums_continued for q in cont if q.drums_continued is not None]
    beats = sum(a.beats for a in acc)
    return StyleSummary(
        style=style,
        pieces=len(cont),
        accompaniments=len(acc),
        median_density_ratio=float(np.median(density)) if density else None,
        min_density_ratio=min(density) if density else None,
        empty_where_prompt_had_none=_share([q.empty_where_prompt_had_none for q in cont]),
        drum_pieces=len(drums),
        drums_continued=_share(drums),
        mean_key_cosine=_mean([q.key_cosine for q in cont]),
        key_agreement=_share([q.keys_agree for q in cont]),
        entropy_delta=_mean(
            [q.entropy - q.reference_entropy for q in cont if q.reference_entropy is not None]
        ),
        polyphony_delta=_mean(
            [q.polyphony - q.reference_polyphony for q in cont if q.reference_polyphony is not None]
        ),
        length_shift=_mean([q.length_shift for q in cont]),
        in_register=_mean([q.in_register for q in cont]),
        tracks_kept=_share([q.tracks_kept for q in cont]),
        consonance_share=sum(a.consonant_beats for a in acc) / beats if beats else None,
        reference_consonance=_mean([a.reference_share for a in acc]),
    )


def summarise(
    results: Sequence[ContinuationQuality | AccompanimentQuality], *, total: bool = False
) -> list[StyleSummary]:
    """One :class:`StyleSummary` per style (sorted by name; ``""`` for results without a style),
    plus an ``"all"`` row over every result when ``total`` is true and there are several styles.

    NaN values (entropy of an empty span, key cosine without a pitched context) are left out
    of the means.
    """
    styles = sorted({r.style for r in results})
    rows = []
    groups = [(s, [r for r in results if r.style == s]) for s in styles]
    if total and len(styles) > 1:
        groups.append(("all", list(results)))
    for style, group in groups:
        cont = [r for r in group if isinstance(r, ContinuationQuality)]
        acc = [r for r in group if isinstance(r, AccompanimentQuality)]
        rows.append(_row(style, cont, acc))
    return rows


@dataclass(frozen=True)
class TargetCheck:
    """One target checked on one style's row."""

    style: str
    target: str
    value: float
    passed: bool


def _row_checks(row: StyleSummary) -> list[TargetCheck]:
    median, low = MEDIAN_DENSITY_TARGET, MIN_DENSITY_TARGET
    # (target, value, threshold, the value must equal the threshold rather than reach it)
    targets = [
        (f"median density ratio >= {median}", row.median_density_ratio, median, False),
        (f"no piece with density ratio < {low}", row.min_density_ratio, low, False),
        ("no empty bars where the prompt had none", row.empty_where_prompt_had_none, 0.0, True),
        ("drums continued (every new bar in a groove)", row.drums_continued, 1.0, True),
        (f"mean key cosine >= {KEY_COSINE_TARGET}", row.mean_key_cosine, KEY_COSINE_TARGET, False),
    ]
    return [
        TargetCheck(row.style, target, value, value == threshold if exact else value >= threshold)
        for target, value, threshold, exact in targets
        if value is not None
    ]


def check_targets(rows: Sequence[StyleSummary]) -> list[TargetCheck]:
    """Check every row against the targets in the module docstring.

    A target is left out for a row that has nothing to check it on (no continuation; no
    piece with drums in its context; no pitched context for the key cosine).
    """
    return [check for row in rows for check in _row_checks(row)]


_HEADERS = {
    "style": "style",
    "pieces": "pieces",
    "accompaniments": "accomp.",
    "median_density_ratio": "median density",
    "min_density_ratio": "min density",
    "empty_where_prompt_had_none": "new empty bars",
    "drum_pieces": "drum pieces",
    "drums_continued": "drums continued",
    "mean_key_cosine": "key cosine",
    "key_agreement": "same key",
    "entropy_delta": "Δ entropy (bits)",
    "polyphony_delta": "Δ polyphony",
    "length_shift": "length shift (oct.)",
    "in_register": "in register",
    "tracks_kept": "tracks kept",
    "consonance_share": "consonance",
    "reference_consonance": "ref. consonance",
}


def _cell(name: str, value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        value = 0.0 if abs(value) < 0.005 else value  # no "-0.00"
        return f"{value:+.2f}" if name.endswith("_delta") else f"{value:.2f}"
    return str(value) or "-"


def _render(header: list[str], body: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body]) + "\n"
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    return (
        "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *body]) + "\n"
    )


def _shown(name: str, rows: Sequence[StyleSummary]) -> bool:
    values = [getattr(r, name) for r in rows]
    return any(values) if name == "accompaniments" else any(v is not None for v in values)


def render_table(rows: Sequence[StyleSummary], *, markdown: bool = True) -> str:
    """The rows as a Markdown table (or space-aligned plain text), one line per style.

    Columns that are empty for every row (e.g. consonance without accompaniments, or the
    accompaniment count when it is 0 everywhere) are left out; an empty cell is ``–``.
    Shares, ratios and deltas have two decimals.
    """
    names = [f.name for f in fields(StyleSummary) if _shown(f.name, rows)]
    body = [[_cell(n, getattr(r, n)) for n in names] for r in rows]
    return _render([_HEADERS[n] for n in names], body, markdown)


def render_targets(checks: Sequence[TargetCheck], *, markdown: bool = True) -> str:
    """The checks as a table: style, target, measured value, ``pass`` or ``FAIL``."""
    body = [[c.style or "-", c.target, f"{c.value:.2f}", "pass" if c.passed else "FAIL"] for c in checks]
    return _render(["style", "target", "value", "result"], body, markdown)
