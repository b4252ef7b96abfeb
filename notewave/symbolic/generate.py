"""Continuing a MIDI prompt with a :class:`~notewave.symbolic.model.MidiLM`.

The composer's main job: prompt MIDI -> REMI tokens (after a conditioning prefix) ->
KV-cached sampling under the REMI grammar -> new bars placed on the prompt's beat grid
after its last note, in the prompt's tracks, tempo and time signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from symusic import Note, Score, Track
from tqdm import tqdm

from notewave.core.midi import MidiLike, load_score, midi_name
from notewave.core.sampling import check_sampling_args, sample
from notewave.errors import ConfigError
from notewave.symbolic.grammar import RemiGrammar, State
from notewave.symbolic.model import MidiLM
from notewave.symbolic.tokenizer import MidiTokenizer
from notewave.symbolic.voices import assign_voices


def bar_ticks(score: Score, tick: int) -> int:
    """Length in ticks of the bar in force at ``tick`` (4/4 when the score has no time signature)."""
    num, den = 4, 4
    for ts in score.time_signatures:
        if ts.time <= tick:
            num, den = ts.numerator, ts.denominator
    return score.ticks_per_quarter * 4 * num // den


def bar_lines(score: Score, until: int) -> list[int]:
    """Tick of every bar line from 0 up to and including the first one at or after ``until``."""
    lines = [0]
    while lines[-1] < until:
        lines.append(lines[-1] + bar_ticks(score, lines[-1]))
    return lines


def continuation_start(score: Score, bars_in_tokens: int = 0) -> tuple[int, int]:
    """Index and tick of the bar where a continuation of ``score`` begins: the first bar line
    at or after the last note-off, and not before bar ``bars_in_tokens``."""
    end_tick = max(t.end() for t in score.tracks if t.notes)
    lines = bar_lines(score, end_tick)
    start_bar = max(len(lines) - 1, bars_in_tokens)
    while len(lines) <= start_bar:
        lines.append(lines[-1] + bar_ticks(score, lines[-1]))
    return start_bar, lines[start_bar]


def first_bars(score: Score, bars: int) -> Score:
    """Copy of ``score`` cut at the end of bar ``bars`` (notes clipped there).

    Raises:
        ConfigError: ``bars < 1``.
        MidiError: no note starts in those bars.
    """
    if bars < 1:
        raise ConfigError(f"prompt_bars must be >= 1, got {bars}")
    lines = [0]
    for _ in range(bars):
        lines.append(lines[-1] + bar_ticks(score, lines[-1]))
    return load_score(score.copy().clip(0, lines[-1], clip_end=True))


def _sample_tokens(
    model: MidiLM,
    tok: MidiTokenizer,
    prefix: list[int],
    body: list[int],
    bars: int,
    grammar: RemiGrammar | None,
    state: State,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator,
    max_tokens: int,
    progress: bool,
) -> list[int]:
    """Sample until ``bars`` more ``Bar`` tokens; returns the new ids (the closing Bar excluded)."""
    bar_id = tok.remi["Bar_None"]
    context = model.context
    generated: list[int] = []
    bars_done = 0

    def window() -> list[int]:
        # The prefix, then as much recent body as fits in half the context, from a bar line.
        seq = body + generated
        room = context // 2 - len(prefix)
        start = max(0, len(seq) - room)
        later_bars = [i for i in range(start, len(seq)) if seq[i] == bar_id]
        start = later_bars[0] if later_bars else start
        return prefix + seq[start:]

    seq = window() if len(prefix) + len(body) >= context else prefix + body
    cache = model.new_cache(1)
    logits = model(torch.tensor([seq]), cache)[:, -1]
    bar = tqdm(total=bars, desc="generate (bars)", disable=not progress)
    while len(generated) < max_tokens:
        allowed = grammar.mask(state)[None] if grammar is not None else None
        next_id = int(sample(logits, temperature, top_k, top_p, allowed, generator)[0])
        if grammar is not None:
            state = grammar.advance(state, next_id) or state
        if next_id == tok.eos_id:
            break
        if next_id == bar_id:
            bars_done += 1
            bar.update(1)
            if bars_done == bars:
                break
        generated.append(next_id)
        if cache.length >= context:
            cache = model.new_cache(1)
            logits = model(torch.tensor([window()]), cache)[:, -1]
        else:
            logits = model(torch.tensor([[next_id]]), cache)[:, -1]
    bar.close()
    return trim_incomplete_note(tok, generated)


def trim_incomplete_note(tok: MidiTokenizer, ids: list[int]) -> list[int]:
    """Drop trailing ids of a note cut off by a token limit (``Program``/``Pitch``/``Velocity``
    without its ``Duration``), so that the last event is complete."""
    end = len(ids)
    while (
        end
        and tok.base_tokens(ids[end - 1])[-1:]
        and tok.base_tokens(ids[end - 1])[-1].split("_")[0]
        in (
            "Program",
            "Pitch",
            "PitchDrum",
            "Velocity",
        )
    ):
        end -= 1
    return ids[:end]


@dataclass
class Continuation:
    """Sampled continuation ids with what is needed to place them: the prompt ``score`` (as used,
    after ``prompt_bars``), the ``new_ids`` (REMI ids after the opening bar line, the closing
    bar line excluded) and ``start_tick``, the bar line in the prompt's ticks where they begin."""

    score: Score
    new_ids: list[int]
    start_tick: int


def continue_midi(
    model: MidiLM, tok: MidiTokenizer, prompt: MidiLike, bars: int = 8, **options: Any
) -> Score:
    """Continue ``prompt`` by ``bars`` bars and return prompt + continuation as one ``Score``.

    The continuation starts on the first bar line at or after the prompt's last note-off
    (on the prompt's grid, in its ticks per quarter), fills exactly ``bars`` bars of the
    meter in force there (notes still sounding at the last bar line are cut there), keeps
    the prompt's tempo map, time signatures, tracks and programs, and is identical for the
    same ``seed``. Only meters the tokenizer has tokens for are accepted
    (:attr:`MidiTokenizer.time_signatures`; the shipped one: 1/4..6/4, 3/8, 6/8, 12/8). Notes of a
    program played by several prompt tracks (e.g. SATB on one organ program) are given
    to those tracks by voice leading (:func:`notewave.symbolic.voices.assign_voices`).
    A prompt longer than the model context is cut to its last bars that fit.

    Args (``options`` are the keyword arguments of :func:`sample_continuation`):
        model: the trained model.
        tok: the tokenizer the model was trained with.
        prompt: MIDI path, bytes or ``symusic.Score``.
        bars: number of bars to add (>= 1).
        temperature, top_k, top_p: sampling (see :mod:`notewave.core.sampling`).
        seed: random seed (``None``: nondeterministic).
        style: style token (must be one the model was trained with), or ``None``.
        constrained: mask tokens the REMI grammar forbids (always decodable output).
        programs: restrict new notes to these programs (default: the prompt's programs when
            constrained).
        max_tokens: safety cap on generated tokens (default ``600 * bars``).
        prompt_bars: use only the first ``prompt_bars`` bars of the prompt (notes clipped at
            that bar line).
        progress: show a tqdm bar of generated bars.

    Returns:
        A ``symusic.Score`` in the prompt's ticks per quarter.

    Raises:
        MidiError: unreadable, empty or drum-only prompt.
        ConditioningError: unknown style.
        ConfigError: invalid sampling arguments or ``bars < 1``.
        TokenizerError: a prompt meter the tokenizer lacks (e.g. 7/8; raised before sampling), or
            tokens that cannot be decoded (only possible unconstrained).
    """
    result = sample_continuation(model, tok, prompt, bars, **options)
    return merge_continuation(result.score, tok, result.new_ids, result.start_tick)


@torch.no_grad()
def sample_continuation(
    model: MidiLM,
    tok: MidiTokenizer,
    prompt: MidiLike,
    bars: int = 8,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = 0.95,
    seed: int | None = 0,
    style: str | None = None,
    constrained: bool = True,
    programs: Sequence[int] | None = None,
    max_tokens: int | None = None,
    prompt_bars: int | None = None,
    progress: bool = False,
) -> Continuation:
    """Sample the continuation's tokens without decoding them (arguments as :func:`continue_midi`)."""
    if bars < 1:
        raise ConfigError(f"bars must be >= 1, got {bars}")
    check_sampling_args(temperature, top_k, top_p)
    score = load_score(prompt, allow_drums_only=False)
    if prompt_bars is not None:
        score = first_bars(score, prompt_bars)
    tok.check_time_signatures(score, midi_name(prompt))  # else miditok reads it as 4/4: bars misplaced
    prompt_programs = tok.programs_of(score)
    prefix = tok.prefix(style, prompt_programs)
    body = tok.encode_body(score)
    bar_id = tok.remi["Bar_None"]

    # Bars in the prompt's tokens, then empty bars up to the first bar line after the last note-off.
    start_bar, start_tick = continuation_start(score, body.count(bar_id))
    body = body + [bar_id] * (start_bar - body.count(bar_id) + 1)

    grammar = None
    state = State()
    if constrained:
        grammar = RemiGrammar(tok, programs=programs if programs is not None else prompt_programs)
        state = grammar.state_after(body)
    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    model.eval()
    new_ids = _sample_tokens(
        model,
        tok,
        prefix,
        body,
        bars,
        grammar,
        state,
        temperature,
        top_k,
        top_p,
        generator,
        max_tokens or 600 * bars,
        progress,
    )
    return Continuation(score, new_ids, start_tick)


def merge_continuation(score: Score, tok: MidiTokenizer, new_ids: list[int], start_tick: int) -> Score:
    """Decode the continuation's ids alone (under the prompt's time signature at its start) and
    add its notes to a copy of ``score`` from ``start_tick`` on (ticks of ``score``), cut at the
    bar line that closes the continuation's last bar (one bar per ``Bar`` token in ``new_ids``, plus one).

    Raises:
        TokenizerError: when the ids cannot be decoded.
    """
    bar_id = tok.remi["Bar_None"]
    num, den = 4, 4
    for ts in score.time_signatures:
        if ts.time <= start_tick:
            num, den = ts.numerator, ts.denominator
    head = [bar_id]
    sig = f"TimeSig_{num}/{den}"
    if not tok.remi.is_trained and sig in tok.remi.vocab:
        head.append(tok.remi[sig])
    decoded = tok.decode(head + new_ids) if new_ids else Score(score.ticks_per_quarter)
    scale = score.ticks_per_quarter / decoded.ticks_per_quarter
    new_bars = 1 + sum(t == "Bar_None" for i in new_ids for t in tok.base_tokens(i))
    end_tick = start_tick + new_bars * bar_ticks(score, start_tick)
    out = score.copy()
    groups: dict[tuple[int, bool], list[Note]] = {}
    for track in decoded.tracks:
        key = (-1 if track.is_drum else int(track.program), bool(track.is_drum))
        for note in track.notes:
            time = start_tick + int(round(note.time * scale))
            if time >= end_tick:  # only unconstrained sampling can place a note past its bar
                continue
            duration = min(max(1, int(round(note.duration * scale))), end_tick - time)
            groups.setdefault(key, []).append(Note(time, duration, note.pitch, note.velocity))
    for (program, is_drum), notes in groups.items():
        targets = [t for t in out.tracks if bool(t.is_drum) == is_drum and (is_drum or t.program == program)]
        if not targets:
            track = Track(
                name="Drums" if is_drum else f"Program {program}", program=max(program, 0), is_drum=is_drum
            )
            out.tracks.append(track)
            targets = [out.tracks[-1]]
        assign_voices(targets, notes)
    for track in out.tracks:
        track.notes.sort(key=lambda n: (n.time, n.pitch))
    return out
