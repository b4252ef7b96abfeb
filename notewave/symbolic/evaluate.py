"""``notewave eval symbolic``: likelihood and measured edit quality of a composer on held-out pieces.

For every style of the data folders' held-out split, the first ``pieces`` pieces (sorted by
file) that are at least ``prompt_bars + bars`` bars long are evaluated:

- NLL in nats per token and per note (:func:`notewave.symbolic.train.style_nll`: every bar
  token scored once, header tokens not). The NLL per note of the whole JSB test split is
  singled out against its target, :data:`JSB_NLL_TARGET`.
- ``continue``: the first ``prompt_bars`` bars as prompt, ``bars`` new bars with the piece's
  style token, measured with :func:`~notewave.symbolic.quality.continuation_quality` against
  the real next bars.
- ``infill``: the piece cut to ``prompt_bars + bars`` bars, its bars ``prompt_bars - bars + 1``
  .. ``prompt_bars`` (1-based; 5-8 by default) regenerated from both sides and measured the
  same way on that span, against the context on both sides (the 4 bars before and the 4 after
  it, as many as the cut holds; ``context_after`` of ``continuation_quality``).
- ``accompany``: on the same cut, a chorale (tracks Soprano, Alto, Tenor, Bass) keeps its
  soprano and gets ``satb``; a piece of two or more tracks with drums loses its drum and bass
  tracks (GM programs 32-39 or "bass" in the name) and gets ``bass,drums``. Measured with
  :func:`~notewave.symbolic.quality_accompaniment.accompaniment_quality` (new pitched parts
  against the kept ones); the reference share is the same measure pooled over the real parts
  of the style's pieces (for chorales: ``chorale_consonance`` of the cut chorales).

Every generated measure has a *real* twin, the same measure of the real held-out bars (the
reference row). A piece an edit fails on (a :class:`~notewave.errors.NotewaveError`) is listed
under the edit's ``failures`` and left out of its rows. Wall times are in seconds.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from symusic import Score
from tqdm import tqdm

from notewave.core.io import atomic_open
from notewave.errors import ConfigError, DataError, NotewaveError
from notewave.paths import DATA_DIR, JSB_MIDI_DIR
from notewave.symbolic import compose
from notewave.symbolic import quality_accompaniment as qa
from notewave.symbolic import quality_report as report
from notewave.symbolic.data import PieceSet, midi_files
from notewave.symbolic.guide import check_strength
from notewave.symbolic.heldout import HeldOut, default_sources, held_out, load_composer
from notewave.symbolic.model import MidiLM
from notewave.symbolic.quality import CONTEXT_BARS, ContinuationQuality, continuation_quality, piece_bars
from notewave.symbolic.train import parse_sources, style_nll
from notewave.symbolic.vocab import Vocab

#: Target NLL of the JSB test split, nats per note.
JSB_NLL_TARGET = 3.45
EDITS = ("continue", "infill", "accompany")


@dataclass
class EditResults:
    """One edit's measures of the generated and of the real bars, wall time (s) and failures."""

    generated: list[Any] = field(default_factory=list)
    real: list[Any] = field(default_factory=list)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def nll_rows(model: MidiLM, vocab: Vocab, groups: dict[str, list[HeldOut]], progress: bool) -> dict:
    """Per style: ``nll_per_token``, ``nll_per_note`` (nats), ``notes`` and ``pieces``."""
    out = {}
    for style, items in tqdm(groups.items(), desc="NLL", unit="style", disable=not progress):
        pieces = PieceSet.from_files([i.path for i in items], style, progress=False)
        with torch.no_grad():
            rows = style_nll(model, vocab, pieces)
        for row in rows.values():
            out[style] = {**row, "pieces": len(pieces.pieces)}
    return out


def jsb_test_nll(model: MidiLM, vocab: Vocab, sources: Sequence[str]) -> dict[str, Any] | None:
    """NLL of every piece of the JSB test split (of the ``jsb`` folder among ``sources``, else
    ``data/jsb``) with its target; None when that split is missing."""
    folder, style = JSB_MIDI_DIR, "bach"
    for path, label in parse_sources(sources):
        if path.name == "jsb" or path.resolve() == JSB_MIDI_DIR.resolve():
            folder, style = path, label or style
    try:
        pieces = PieceSet.from_files(midi_files(folder / "test"), style, progress=False)
    except DataError:
        return None
    if not pieces.pieces:
        return None
    with torch.no_grad():
        row = next(iter(style_nll(model, vocab, pieces).values()))
    passed = row["nll_per_note"] <= JSB_NLL_TARGET
    info = {"pieces": len(pieces.pieces), "folder": str(folder / "test"), "style": style}
    return {**row, **info, "target": JSB_NLL_TARGET, "passed": passed}


def accompaniment_task(score: Score) -> tuple[list[int], list[str], list[str], str] | None:
    """What ``accompany`` does with ``score``: (indices of the tracks kept, their names, names of
    the real parts replaced, parts to add), or None for a piece neither a chorale nor a band."""
    tracks = [(i, t) for i, t in enumerate(score.tracks) if len(t.notes)]
    if set(qa.CHORALE_MELODY + qa.CHORALE_LOWER_VOICES) <= {t.name for _, t in tracks}:
        kept = [i for i, t in tracks if t.name in qa.CHORALE_MELODY]
        return kept, list(qa.CHORALE_MELODY), list(qa.CHORALE_LOWER_VOICES), "satb"
    if len(tracks) < 2 or not any(t.is_drum for _, t in tracks):
        return None
    bass = [i for i, t in tracks if not t.is_drum and (32 <= t.program <= 39 or "bass" in t.name.lower())]
    kept = [i for i, t in tracks if not t.is_drum and i not in bass]
    names = [score.tracks[i].name for i in kept]
    return (kept, names, [score.tracks[i].name for i in bass], "bass,drums") if kept else None


def _measure(score: Score, span: tuple[int, int], item: HeldOut, **kwargs: Any) -> ContinuationQuality:
    """:func:`continuation_quality` of bars ``[span[0], span[1])`` of ``score``, labelled as ``item``."""
    return continuation_quality(score, span[0], span[1], name=item.path.name, style=item.style, **kwargs)


def run_edit(
    edit: str, model: MidiLM, vocab: Vocab, item: HeldOut, prompt_bars: int, bars: int, **options: Any
) -> tuple[Any, Any] | None:
    """Run ``edit`` on ``item`` (``options``: seed and sampling of :mod:`~notewave.symbolic.compose`);
    returns the measures of the generated and of the real bars (the latter None for a band piece
    without a real bass), or None when ``accompany`` does not apply to the piece.

    Raises:
        NotewaveError: the edit or the measure failed on this piece.
    """
    options = {"style": item.token, **options}
    own = ("density", "lengths", "range_margin", "key_balance") if edit == "accompany" else ("consonance",)
    for name in own:
        options.pop(name, None)  # the edits' own guides and bounds
    cut = compose.first_bars(item.score, prompt_bars + bars)
    if edit == "continue":
        prompt = compose.first_bars(item.score, prompt_bars)
        first = piece_bars(prompt)  # the continuation starts on the prompt's last bar line
        out = compose.continue_midi(model, vocab, prompt, bars, **options)
        span = (first, first + bars)
        generated = _measure(out, span, item, prompt=prompt, reference=item.score)
        # the real twin on the piece cut at the span's end, as the composer's output is
        return generated, _measure(compose.first_bars(item.score, span[1]), span, item)
    if edit == "infill":
        span = (prompt_bars - bars, prompt_bars)
        out = compose.infill_midi(model, vocab, cut, (span[0] + 1, span[1]), **options)
        # an infill's prompt is the music on both sides: its context is read on both
        both = {"context_after": CONTEXT_BARS}
        generated = _measure(out, span, item, prompt=cut, reference=cut, **both)
        return generated, _measure(cut, span, item, **both)
    if (task := accompaniment_task(cut)) is None:
        return None
    kept, melody, real_parts, add = task
    alone = cut.copy()
    alone.tracks = [t for i, t in enumerate(alone.tracks) if i in kept]
    out = compose.accompany_midi(model, vocab, alone, add, **options)
    added = list(qa.CHORALE_LOWER_VOICES) if add == "satb" else ["Bass"]
    label = {"name": item.path.name, "style": item.style}
    real = qa.accompaniment_quality(cut, melody, real_parts, **label) if real_parts else None
    return qa.accompaniment_quality(out, melody, added, **label), real


@dataclass
class SymbolicEvaluation:
    """The result of :func:`evaluate_symbolic`: settings, NLL per style (nats), the JSB test NLL,
    the edits' measures and the wall time (s)."""

    settings: dict[str, Any]
    nll: dict[str, dict[str, Any]]
    jsb_test: dict[str, Any] | None = None
    edits: dict[str, EditResults] = field(default_factory=dict)
    wall_s: float = 0.0

    def rows(self, edit: str, real: bool = False) -> list[report.StyleSummary]:
        """Per-style rows of ``edit``'s generated (or real) measures (:func:`report.summarise`)."""
        results = self.edits[edit]
        return report.summarise(results.real if real else results.generated)

    def targets(self) -> list[report.TargetCheck]:
        """The JSB NLL target, then the continuation and infill targets of every style."""
        checks = []
        if (jsb := self.jsb_test) is not None:
            target = f"JSB test NLL <= {JSB_NLL_TARGET} nats/note"
            checks.append(report.TargetCheck(jsb["style"], target, jsb["nll_per_note"], jsb["passed"]))
        for edit in ("continue", "infill"):
            if edit in self.edits:
                found = report.check_targets(self.rows(edit))
                checks += [replace(c, target=f"{edit}: {c.target}") for c in found]
        return checks

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (NaN as None): settings, nll, jsb_test, per edit its rows, real rows,
        per-piece measures and failures, targets, wall_s."""
        edits = {
            name: {
                "seconds": round(r.seconds, 2),
                "rows": [asdict(row) for row in self.rows(name)],
                "real_rows": [asdict(row) for row in self.rows(name, real=True)],
                "pieces": [asdict(q) for q in r.generated],
                "real": [asdict(q) for q in r.real],
                "failures": r.failures,
            }
            for name, r in self.edits.items()
        }
        data = {"settings": self.settings, "nll": self.nll, "jsb_test": self.jsb_test, "edits": edits}
        targets = [asdict(c) for c in self.targets()]
        data |= {"targets": targets, "wall_s": round(self.wall_s, 2)}
        return json.loads(json.dumps(data), parse_constant=lambda _: None)  # NaN -> None

    def render(self, markdown: bool = True) -> str:
        """The NLL table, one table per edit (each style's row, then its real row) and the targets,
        as Markdown or space-aligned text."""
        s, head = self.settings, "## " if markdown else ""
        parts = [f"{head}NLL (nats) on the {s['split']} split\n"]
        body = [["style", "pieces", "notes", "NLL/token", "NLL/note"]]
        for style, row in self.nll.items():
            nll = [f"{row['nll_per_token']:.3f}", f"{row['nll_per_note']:.3f}"]
            body.append([style, str(row["pieces"]), str(row["notes"]), *nll])
        parts.append(text_table(body, markdown))
        if (jsb := self.jsb_test) is not None:
            verdict = "pass" if jsb["passed"] else "FAIL"
            parts.append(f"\nJSB test NLL: {jsb['nll_per_note']:.3f} nats/note over {jsb['pieces']} pieces ")
            parts.append(f"(target <= {JSB_NLL_TARGET}): {verdict}\n")
            kinds = sorted(jsb.get("by_kind", {}).items(), key=lambda kv: -kv[1])
            parts.append("by token kind, nats/note: " + ", ".join(f"{k} {v:.3f}" for k, v in kinds) + "\n")
        for name, results in self.edits.items():
            title = f"{name}: {s['prompt_bars']} prompt bars, {s['bars']} bars, {results.seconds:.1f} s"
            parts.append(f"\n{head}{title}\n")
            real = {r.style: replace(r, style=f"{r.style} (real)") for r in self.rows(name, real=True)}
            rows = [x for row in self.rows(name) for x in (row, real.get(row.style)) if x is not None]
            parts.append(report.render_table(rows, markdown=markdown) if rows else "no piece\n")
            parts += [f"failed: {f}\n" for f in results.failures]
        parts += [f"\n{head}targets\n", report.render_targets(self.targets(), markdown=markdown)]
        return "".join(parts)


def text_table(body: list[list[str]], markdown: bool = True) -> str:
    """Rows of cells (the first the header) as a Markdown table or space-aligned text."""
    if markdown:
        lines = ["| " + " | ".join(body[0]) + " |", "|" + "---|" * len(body[0])]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body[1:]]) + "\n"
    widths = [max(len(c) for c in col) for col in zip(*body)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in body) + "\n"


def check_settings(
    split: str,
    pieces: int,
    prompt_bars: int,
    bars: int,
    edits: Sequence[str],
    guides: Mapping[str, float | None] | None = None,
) -> None:
    """Raise :class:`ConfigError` for settings the evaluation cannot run with (before any piece is
    read: a negative guide weight or range margin included)."""
    for name, value in (guides or {}).items():
        if name == "range_margin":
            if value is not None and (int(value) != value or value < 0):
                raise ConfigError(f"range margin must be an integer >= 0 semitones (or None), got {value}")
        elif name in ("key", "key_balance", "consonance", "density", "lengths"):
            check_strength(name, float(value) if value is not None else math.nan)
        else:
            raise ConfigError(
                f"unknown guide {name!r}; known: key, key_balance, consonance, density, lengths, range_margin"
            )
    if split not in ("valid", "test"):
        raise ConfigError(f"split must be valid or test, got {split!r}")
    if min(pieces, prompt_bars, bars) < 1:
        raise ConfigError(f"pieces, prompt bars and bars must be >= 1, got {pieces}, {prompt_bars}, {bars}")
    if unknown := [e for e in edits if e not in EDITS]:
        raise ConfigError(f"unknown edit {unknown[0]!r}; choose from {', '.join(EDITS)}")
    if "infill" in edits and prompt_bars <= bars:
        raise ConfigError(f"infill needs more prompt bars than bars, got {prompt_bars} and {bars}")


def evaluate_symbolic(
    checkpoint: str | os.PathLike[str] | tuple[MidiLM, Vocab],
    data: Sequence[str] | None = None,
    split: str = "test",
    pieces: int = 4,
    prompt_bars: int = 8,
    bars: int = 4,
    edits: Sequence[str] = EDITS,
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float | None = 0.95,
    progress: bool = True,
    guides: Mapping[str, float | None] | None = None,
) -> SymbolicEvaluation:
    """Evaluate a composer (a checkpoint folder, or its model and vocabulary) as the module
    docstring says.

    Args:
        data: ``DIR[:STYLE]`` folders with ``split`` subfolders (default: :func:`default_sources`).
        split: ``valid`` or ``test``. pieces: pieces per style.
        prompt_bars, bars: bars of the prompt and of each edit.
        edits: a subset of :data:`EDITS` (empty: NLL only).
        seed: sampling seed of the first piece (the i-th piece uses ``seed + i``).
        temperature, top_p: sampling settings.
        guides: weights of the edits' guides, ``{"key": W, "key_balance": W, "consonance": W,
            "density": W, "lengths": W}``, and ``"range_margin"`` of continue and infill (semitones or None)
            (default: compose's).

    Raises:
        ConfigError: bad settings (see :func:`check_settings`) or sampling arguments.
        CheckpointError: the checkpoint cannot be loaded.
        DataError: a missing data folder or split, or no piece long enough.
    """
    started = time.perf_counter()
    check_settings(split, pieces, prompt_bars, bars, edits, guides)
    model, vocab = checkpoint if isinstance(checkpoint, tuple) else load_composer(checkpoint)
    sources = list(data) if data else default_sources(split)
    if not sources:
        raise DataError(f"no data folder with a {split}/ split under {DATA_DIR}; give --data DIR[:STYLE]")
    groups = held_out(sources, split, pieces, prompt_bars + bars, vocab.styles)
    sampling = {"temperature": temperature, "top_p": top_p, **(guides or {})}
    name = "(in memory)" if isinstance(checkpoint, tuple) else str(checkpoint)
    settings = {"checkpoint": name, "data": sources, "split": split, "pieces": pieces}
    settings |= {"prompt_bars": prompt_bars, "bars": bars, "edits": list(edits), "seed": seed, **sampling}
    model.eval()
    result = SymbolicEvaluation(settings, nll_rows(model, vocab, groups, progress))
    result.jsb_test = jsb_test_nll(model, vocab, sources)
    items = [item for group in groups.values() for item in group]
    for edit in (e for e in EDITS if e in edits):
        results = result.edits[edit] = EditResults()
        clock = time.perf_counter()
        for index, item in enumerate(tqdm(items, desc=edit, unit="piece", disable=not progress)):
            try:
                pair = run_edit(edit, model, vocab, item, prompt_bars, bars, seed=seed + index, **sampling)
            except NotewaveError as exc:
                results.failures.append(f"{item.path.name}: {exc}")
                continue
            if pair is not None:
                results.generated.append(pair[0])
                results.real += [pair[1]] if pair[1] is not None else []
        results.seconds = time.perf_counter() - clock
    if "accompany" in result.edits:  # each style's pooled real consonance as the reference share
        acc = result.edits["accompany"]
        shares = {row.style: row.consonance_share for row in report.summarise(acc.real)}
        acc.generated = [replace(q, reference_share=shares.get(q.style)) for q in acc.generated]
    result.wall_s = time.perf_counter() - started
    return result


def write_reports(result: SymbolicEvaluation, json_path: Path | None, markdown_path: Path | None) -> None:
    """Write the JSON (:meth:`SymbolicEvaluation.to_dict`) and Markdown reports atomically."""
    if json_path is not None:
        with atomic_open(json_path) as handle:
            handle.write(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
    if markdown_path is not None:
        with atomic_open(markdown_path) as handle:
            handle.write(f"# Composer evaluation: {result.settings['checkpoint']}\n\n")
            handle.write(result.render(markdown=True))
