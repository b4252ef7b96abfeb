"""Measured quality of the composer's edits per style, next to the real held-out music.

Run: ``.venv/bin/python bench/symbolic_quality.py [--checkpoint DIR] [--data DIR[:STYLE] ...]
[--split test] [--pieces 4] [--prompt-bars 8] [--bars 4] [--edits continue,infill,accompany]``.

The same evaluation as ``notewave eval symbolic`` (:mod:`notewave.symbolic.evaluate`): NLL per
style, then continuations, infills and accompaniments of held-out pieces. Each edit's table
has, per style, a ``generated`` row and a ``real`` row measured the same way on the real bars
of the same pieces in the same run: notes per bar, density ratio (new / context notes per
bar; median and minimum), key cosine with the context and share of same estimated key,
pitch-class entropy (bits), polyphony (pitched notes per sounding 16th), drums continued in
every new bar (pieces whose context has drums) and new empty bars where the context had
none; for accompaniments the consonance share of the added (or real) parts with the melody.
Ends with the targets and the wall time.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT, PROJECT_ROOT
from notewave.symbolic.evaluate import (
    EDITS,
    JSB_NLL_TARGET,
    SymbolicEvaluation,
    evaluate_symbolic,
    text_table,
    write_reports,
)
from notewave.symbolic.quality_report import render_targets

#: The composer being trained, used when the shipped one is not there yet.
RUN_CHECKPOINT = PROJECT_ROOT / "runs" / "composer" / "best"


def _mean(values: Sequence[float | None]) -> str:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return f"{np.mean(kept):.2f}" if kept else "–"


def _share(flags: Sequence[bool | None]) -> str:
    kept = [f for f in flags if f is not None]
    return f"{sum(kept) / len(kept):.2f}" if kept else "–"


def continuation_row(style: str, music: str, results: Sequence[Any]) -> list[str]:
    """One table row over the :class:`ContinuationQuality` results of one style."""
    ratios = [q.density_ratio for q in results]
    return [
        style,
        music,
        str(len(results)),
        _mean([q.new_notes_per_bar for q in results]),
        f"{np.median(ratios):.2f}",
        f"{min(ratios):.2f}",
        _mean([q.key_cosine for q in results]),
        _share([q.keys_agree for q in results]),
        _mean([q.entropy for q in results]),
        _mean([q.polyphony for q in results]),
        _share([q.drums_continued for q in results]),
        _share([q.empty_where_prompt_had_none for q in results]),
    ]


CONTINUATION_HEADER = [
    "style",
    "music",
    "pieces",
    "notes/bar",
    "median density",
    "min density",
    "key cosine",
    "same key",
    "entropy (bits)",
    "polyphony",
    "drums continued",
    "new empty bars",
]


def accompaniment_row(style: str, music: str, results: Sequence[Any]) -> list[str]:
    """One table row over the :class:`AccompanimentQuality` results of one style (pooled beats)."""
    beats = sum(a.beats for a in results)
    share = sum(a.consonant_beats for a in results) / beats if beats else math.nan
    return [style, music, str(len(results)), str(beats), "–" if math.isnan(share) else f"{share:.2f}"]


def edit_table(result: SymbolicEvaluation, edit: str) -> str:
    """Markdown table of ``edit``: per style the generated row, then the real one."""
    results = result.edits[edit]
    accompany = edit == "accompany"
    header = ["style", "music", "pieces", "beats", "consonance"] if accompany else CONTINUATION_HEADER
    make = accompaniment_row if accompany else continuation_row
    body = [header]
    for style in sorted({q.style for q in results.generated}):
        for music, group in (("generated", results.generated), ("real", results.real)):
            chosen = [q for q in group if q.style == style]
            if chosen:
                body.append(make(style, music, chosen))
    return text_table(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = DEFAULT_SYMBOLIC_CHECKPOINT if DEFAULT_SYMBOLIC_CHECKPOINT.is_dir() else RUN_CHECKPOINT
    parser.add_argument(
        "--checkpoint", type=Path, default=default, help=f"composer folder (default {default})"
    )
    parser.add_argument("--data", action="append", default=None, metavar="DIR[:STYLE]")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--pieces", type=int, default=4, help="pieces per style")
    parser.add_argument("--prompt-bars", type=int, default=8)
    parser.add_argument("--bars", type=int, default=4)
    parser.add_argument("--edits", default=",".join(EDITS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the full report as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    edits = [e for e in args.edits.split(",") if e and e != "none"]
    result = evaluate_symbolic(
        args.checkpoint,
        args.data,
        split=args.split,
        pieces=args.pieces,
        prompt_bars=args.prompt_bars,
        bars=args.bars,
        edits=edits,
        seed=args.seed,
    )
    data = ", ".join(result.settings["data"])
    print(f"checkpoint {args.checkpoint}; data {data} ({args.split} split); {args.pieces} pieces per style;")
    print(f"torch threads {torch.get_num_threads()}\n")
    body = [["style", "pieces", "notes", "NLL/token (nats)", "NLL/note (nats)"]]
    for style, row in result.nll.items():
        nll = [f"{row['nll_per_token']:.3f}", f"{row['nll_per_note']:.3f}"]
        body.append([style, str(row["pieces"]), str(row["notes"]), *nll])
    print(text_table(body))
    if (jsb := result.jsb_test) is not None:
        value, count = jsb["nll_per_note"], jsb["pieces"]
        print(f"JSB test split: {value:.3f} nats/note over {count} chorales (target <= {JSB_NLL_TARGET})\n")
    for edit, results in result.edits.items():
        span = f"{args.prompt_bars} prompt bars, {args.bars} new bars"
        print(f"### {edit} ({span}; {results.seconds:.1f} s)\n")
        print(edit_table(result, edit) if results.generated else "no piece\n")
        for failure in results.failures:
            print(f"failed: {failure}")
    print("### targets\n")
    print(render_targets(result.targets()))
    if args.json:
        write_reports(result, args.json, None)
    print(f"wall time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
