"""The composer's edits on a :class:`~notewave.symbolic.piece.Piece`: continue, infill, accompany.

All three work on quantized pieces (bars of 12 positions per quarter) and return a new
piece; :mod:`notewave.symbolic.compose` turns MIDI into pieces and back, keeping the
user's tracks, tempo map, meters and ticks.

- :func:`continue_piece` writes new bars after the last one, bar by bar (sliding window:
  any number of bars, the context re-read from a bar line when full).
- :func:`fill_slots` writes (bar, track) slots with MMM's bar-fill layout (see
  :mod:`notewave.symbolic.layout`), a few bars at a time, each window holding the music on
  both sides; infilling a span and accompanying (every slot of new tracks) both use it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from notewave.errors import ConfigError
from notewave.symbolic.decode import Decoder, Sampling
from notewave.symbolic.grammar import Grammar, State
from notewave.symbolic.guide import Guide, combine
from notewave.symbolic.layout import bar_ids, header_ids, parse_ids, piece_ids
from notewave.symbolic.model import MidiLM
from notewave.symbolic.piece import BAR, TRACK, Piece
from notewave.symbolic.vocab import Vocab, tempo_bin

FILL_CHUNK_BARS = 4  # bars of slots written per bar-fill window


def _bar_tokens(vocab: Vocab, piece: Piece) -> list[list[int]]:
    """Tokens of every bar of ``piece`` read from its start."""
    offsets = piece.bar_offsets()
    out, previous = [], None
    for bar in range(piece.bars):
        out.append(bar_ids(vocab, piece, bar, piece.notes[offsets[bar] : offsets[bar + 1]], previous))
        previous = (piece.meters[bar], tempo_bin(float(piece.tempos[bar])))
    return out


def _window(vocab: Vocab, header: list[int], bars: list[list[int]], budget: int) -> tuple[int, list[int]]:
    """The latest bars (whole) that fit in ``budget`` tokens after ``header``: (first bar, ids). The
    first bar's own ``TimeSig``/``Tempo`` are left out, as in the token layout (the header has them)."""
    used, first = len(header), len(bars)
    while first > 0 and used + len(bars[first - 1]) <= budget:
        first -= 1
        used += len(bars[first])
    first = min(first, len(bars) - 1) if bars else 0
    body = [t for bar in bars[first:] for t in bar]
    opening = 1
    while opening < len(body) and vocab.kind(body[opening]) in ("TimeSig", "Tempo"):
        opening += 1
    return first, header + body[:1] + body[opening:]


def continue_piece(
    model: MidiLM,
    vocab: Vocab,
    piece: Piece,
    bars: int,
    sampling: Sampling,
    style: str | None = None,
    progress: bool = False,
    keep_playing: bool = True,
    ranges: Mapping[int, tuple[int, int]] | None = None,
    guides: Sequence[Guide] = (),
    meters: Sequence[tuple[int, int]] | None = None,
) -> Piece:
    """``piece`` followed by ``bars`` new bars in its last meter and tempo, in its tracks
    (``meters``: the meter of each new bar instead; a ``TimeSig`` token opens a new bar whose
    meter's token differs from the bar before, as in the token layout).

    ``keep_playing``: every track with a note in the piece's last bar plays (at least one onset)
    in every new bar (a grammar constraint; the model chooses what). ``ranges``: pitch bounds of
    some tracks (see :class:`~notewave.symbolic.grammar.Grammar`). ``guides``: logit biases
    (e.g. :class:`~notewave.symbolic.key_guide.KeyGuide`), given the piece and the bars written
    so far.

    Raises:
        ConditioningError: an unknown style.
    """
    tempo = float(piece.tempos[-1])
    new_meters = list(meters) if meters is not None else [piece.meters[-1]] * bars
    if len(new_meters) != bars:
        raise ConfigError(f"{len(new_meters)} meters for {bars} new bars")
    meter = new_meters[0]
    active = np.unique(piece.bar_notes(piece.bars - 1)[:, TRACK]) if keep_playing else []
    grammar = Grammar(vocab, piece.programs, active=active, ranges=ranges)
    history = _bar_tokens(vocab, piece)
    new: list[list[int]] = []
    decoder = Decoder(model, grammar, sampling)
    current, state = _bar_opening(vocab, grammar, meter, piece.meters[-1])  # from its Bar token
    limit = 64 * model.context
    bar = tqdm(total=bars, desc="continue (bars)", disable=not progress)
    so_far = piece  # the piece and the bars written so far (the guides read it; returned at the end)
    while len(new) < bars:
        all_bars = history + new
        header = header_ids(vocab, piece.programs, meter, tempo, style)
        first, _ = _window(vocab, header, all_bars, model.context // 2)
        meters = list(piece.meters) + new_meters[: len(new)]
        tempos = list(piece.tempos) + [tempo] * len(new)
        header = header_ids(vocab, piece.programs, meters[first], float(tempos[first]), style)
        _, context = _window(vocab, header, all_bars, model.context // 2)
        decoder.start(context + current)
        while len(new) < bars:
            bias = combine(guides, so_far, so_far.bars)
            ids, state, stopped = decoder.run(state, lambda t, s: t == vocab.bar_id, limit, bias)
            limit -= len(ids)
            if not stopped:
                current += ids
                if limit <= 0:  # a runaway bar: close it where it is
                    current = current[: _last_complete(vocab, current)]
                    stopped = True
                else:
                    break  # context full: new window
            else:
                current += ids[:-1]
            new.append(current)
            so_far = _with_bar(vocab, so_far, current, meter, tempo)
            bar.update(1)
            if len(new) == bars:
                break
            previous, meter = meter, new_meters[len(new)]
            current, state = _bar_opening(vocab, grammar, meter, previous)
            if decoder.room > len(current):
                for token in current:
                    decoder.feed(token)
            else:
                break
    bar.close()
    return Piece(list(so_far.programs), list(so_far.meters), so_far.tempos, so_far.notes, list(so_far.names))


def _bar_opening(
    vocab: Vocab, grammar: Grammar, meter: tuple[int, int], previous: tuple[int, int]
) -> tuple[list[int], State]:
    """The tokens that open a new bar in ``meter`` after a bar in ``previous`` (``Bar``, and its
    ``TimeSig`` where the token differs) and the grammar state after them."""
    state = grammar.bar_state(meter)
    if vocab.meter_id(*meter) == vocab.meter_id(*previous):
        return [vocab.bar_id], state
    return [vocab.bar_id, vocab.meter_id(*meter)], grammar.follow(state, vocab.meter_id(*meter))


def _with_bar(vocab: Vocab, piece: Piece, ids: list[int], meter: tuple[int, int], tempo: float) -> Piece:
    """``piece`` followed by the bar of ``ids`` (from its ``Bar`` token) in ``meter`` and ``tempo``."""
    notes = parse_ids(vocab, ids, meter, tempo).notes.copy()
    notes[:, BAR] = piece.bars
    return Piece(
        piece.programs,
        [*piece.meters, meter],
        np.append(piece.tempos, tempo),
        np.concatenate([piece.notes, notes]).astype(np.int32),
        piece.names,
    )


def _last_complete(vocab: Vocab, ids: list[int]) -> int:
    """Length of the longest prefix of ``ids`` that does not end inside a note."""
    end = len(ids)
    while end and vocab.kind(ids[end - 1]) in ("Pos", "Pitch", "Vel"):
        end -= 1
    return end


def _slot_budget(piece: Piece, track: int) -> int:
    """Tokens to reserve for writing one slot of ``track``: 1.5x its mean bar, at least 24."""
    rows = int((piece.notes[:, TRACK] == track).sum())
    return max(24, int(1.5 * 4.5 * rows / max(piece.bars, 1)) + 3)


def fill_slots(
    model: MidiLM,
    vocab: Vocab,
    piece: Piece,
    slots: Iterable[tuple[int, int]],
    sampling: Sampling,
    style: str | None = None,
    progress: bool = False,
    ranges: Mapping[int, tuple[int, int]] | None = None,
    guides: Sequence[Guide] = (),
    must_play: Collection[tuple[int, int]] = (),
) -> Piece:
    """``piece`` with the (bar, track) ``slots`` written anew (their old notes removed), using the
    music on both sides of each (MMM bar-fill; Ens & Pasquier 2020). ``ranges``: pitch bounds of
    some tracks (see :class:`~notewave.symbolic.grammar.Grammar`); ``guides``: logit biases on
    the slots' pitches (:mod:`notewave.symbolic.guide`, :mod:`notewave.symbolic.key_guide`);
    ``must_play``: slots that must hold at least one note (a grammar constraint).

    Slots are written in bar order, :data:`FILL_CHUNK_BARS` bars per window; a window holds
    the header, bars to the left (already final), the chunk, and bars to the right (their
    pending slots as ``Fill``), as many as the context allows, shared left and right.
    """
    todo = sorted(set(slots))
    pending = set(todo)
    drop = np.zeros(len(piece.notes), bool)
    for bar, track in todo:
        drop |= (piece.notes[:, BAR] == bar) & (piece.notes[:, TRACK] == track)
    work = Piece(
        list(piece.programs), list(piece.meters), piece.tempos, piece.notes[~drop], list(piece.names)
    )
    grammar = Grammar(vocab, work.programs, ranges=ranges)
    decoder = Decoder(model, grammar, sampling)
    bar_progress = tqdm(total=len(todo), desc="fill (slots)", disable=not progress)
    while todo:
        first = todo[0][0]
        sizes = [len(b) for b in _bar_tokens(vocab, work)]
        header = len(header_ids(vocab, work.programs, work.meters[first], float(work.tempos[first]), style))
        for bars in range(FILL_CHUNK_BARS, 0, -1):  # fewer bars per window when dense ones do not fit
            chunk = [s for s in todo if s[0] < first + bars]
            lo, hi = first, max(b for b, _ in chunk) + 1
            reserve = sum(_slot_budget(piece, t) + 4 for _, t in chunk)
            used = header + sum(sizes[lo:hi]) + reserve
            if used <= model.context:
                break
        grow_left = True
        while lo > 0 or hi < work.bars:
            side = lo - 1 if (grow_left and lo > 0) or hi >= work.bars else hi
            extra = sizes[side] + sum(1 for b, _ in pending if b == side)
            if used + extra > model.context:
                break
            used += extra
            lo, hi = (side, hi) if side < lo else (lo, side + 1)
            grow_left = not grow_left
        window_slots = sorted(s for s in pending if lo <= s[0] < hi)
        ids = piece_ids(vocab, work, lo, hi, style, window_slots, eos=False, append_fills=False)
        decoder.start(ids)
        written = []
        for bar, track in chunk:
            if decoder.room < 8:
                break
            decoder.feed(vocab["FillStart"])
            decoder.feed(vocab.spans["Track"].id(track))
            state = grammar.segment_state(track, work.meters[bar], True, (bar, track) in must_play)
            bias = combine(guides, work, bar)
            out, state, stopped = decoder.run(state, lambda t, s: t == vocab["FillEnd"], decoder.room, bias)
            if not stopped and written:
                break  # out of room: this slot is written again in the next window
            segment = out[:-1] if stopped else out[: _last_complete(vocab, out)]
            written.append(((bar, track), segment))
            if not stopped or decoder.room <= 0:
                break
            decoder.feed(vocab["FillEnd"])
        if not written:  # no room at all: the chunk's first slot stays empty
            written.append((chunk[0], []))
        rows = []
        for (bar, track), segment in written:
            parsed = parse_ids(
                vocab, [vocab.bar_id, vocab.spans["Track"].id(track), *segment], work.meters[bar]
            )
            found = parsed.notes.copy()
            found[:, BAR] = bar
            rows.append(found)
            pending.discard((bar, track))
            todo.remove((bar, track))
            bar_progress.update(1)
        notes = np.concatenate([work.notes, *rows]).astype(np.int32)
        notes = notes[np.lexsort((notes[:, 3], notes[:, 2], notes[:, TRACK], notes[:, BAR]))]
        work = Piece(work.programs, work.meters, work.tempos, notes, work.names)
    bar_progress.close()
    return work
