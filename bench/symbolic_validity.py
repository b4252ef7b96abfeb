"""Share of sampled continuations that decode to valid MIDI, unconstrained vs grammar-constrained.

Run: ``.venv/bin/python bench/symbolic_validity.py [--samples 100] [--checkpoint DIR]``

For each sample, a JSB test chorale's first 2 bars are continued by 2 bars with the same
seed both ways (temperature 1, no top-k/top-p, so the model's own distribution decides).
A sample "decodes without errors" when its tokens follow the REMI grammar (every Pitch
followed by Velocity then Duration, Position increasing inside a bar, nothing cut off),
miditok decodes them, and every Pitch token becomes a note.
"""

from __future__ import annotations

import argparse
import time

from tqdm import tqdm

from notewave.errors import NotewaveError
from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT, JSB_MIDI_DIR
from notewave.pipelines.composer import Composer
from notewave.symbolic.generate import sample_continuation
from notewave.symbolic.grammar import grammar_errors
from notewave.symbolic.tokenizer import MidiTokenizer


def decode_problems(tok: MidiTokenizer, ids: list[int]) -> list[str]:
    problems = grammar_errors(tok, ids)
    try:
        score = tok.decode(ids)
    except NotewaveError as exc:
        return [*problems, str(exc)]
    pitches = sum(1 for i in ids for t in tok.base_tokens(i) if t.startswith(("Pitch_", "PitchDrum_")))
    if score.note_num() != pitches:
        problems.append(f"{pitches} Pitch tokens but {score.note_num()} decoded notes")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--checkpoint", default=str(DEFAULT_SYMBOLIC_CHECKPOINT))
    parser.add_argument("--bars", type=int, default=2)
    args = parser.parse_args()
    composer = Composer.from_pretrained(args.checkpoint)
    model, tok = composer.model, composer.tokenizer
    style = tok.styles[0] if tok.styles else None
    files = sorted((JSB_MIDI_DIR / "test").glob("*.mid"))
    bar_id = tok.remi["Bar_None"]
    rows = {}
    for constrained in (False, True):
        valid, tokens, start = 0, 0, time.perf_counter()
        for i in tqdm(range(args.samples), desc="constrained" if constrained else "unconstrained"):
            result = sample_continuation(
                model,
                tok,
                files[i % len(files)],
                bars=args.bars,
                prompt_bars=2,
                seed=i,
                style=style,
                constrained=constrained,
                top_p=None,
            )
            ids = [bar_id, *result.new_ids]
            tokens += len(ids)
            valid += not decode_problems(tok, ids)
        rows[constrained] = (valid / args.samples, tokens / (time.perf_counter() - start))
    print(f"\n{args.samples} samples of {args.bars} bars from {args.checkpoint}")
    print("| sampling | decode without errors | tokens/s |")
    print("|---|---|---|")
    for constrained, (share, speed) in rows.items():
        print(f"| {'grammar-constrained' if constrained else 'unconstrained'} | {share:.0%} | {speed:,.0f} |")


if __name__ == "__main__":
    main()
