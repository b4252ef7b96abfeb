"""Pickups (anacruses) of music21 scores: rests before them so that bar lines fall where the score has them.

A first measure shorter than the second measure's bar is a pickup; :func:`pickup_padding` says
how much rest fills the first bar, and :func:`shift_after_pickup` moves a converted
``symusic.Score`` that far, giving its first bar the meter of the first full bar.
"""

from __future__ import annotations

from typing import Any


def pickup_padding(part: Any) -> tuple[float, tuple[int, int] | None]:
    """Rests to put before a pickup measure, in quarter notes, and the meter of the first full bar.

    A part whose first measure lasts less than the second measure's bar (``barDuration``)
    starts with a pickup; the padding is the difference. Returns ``(0.0, None)`` for a part
    with no pickup (or fewer than two measures).
    """
    from music21 import stream

    measures = list(part.getElementsByClass(stream.Measure)[:2])
    if len(measures) < 2:
        return 0.0, None
    first, second = measures
    length = float(second.offset) - float(first.offset)
    bar = float(second.barDuration.quarterLength)
    if not 0 < length < bar - 1e-6:
        return 0.0, None
    sig = second.getContextByClass("TimeSignature")
    return bar - length, (int(sig.numerator), int(sig.denominator)) if sig is not None else None


def shift_after_pickup(result: Any, pad: int, meter: tuple[int, int] | None) -> None:
    """Move every note and later conductor event of ``result`` ``pad`` ticks on; bar 1 takes ``meter``.

    Events at tick 0 (the opening tempo and key) stay at tick 0; the pickup's own time
    signature gives way to ``meter``; a time signature equal to the one before it is dropped.
    """
    import symusic

    for track in result.tracks:
        for note in track.notes:
            note.time += pad
    for events in (result.tempos, result.key_signatures):
        for event in events:
            if event.time > 0:
                event.time += pad
    signatures = [(0, *meter)] if meter is not None else []
    for sig in result.time_signatures:
        if meter is None or sig.time > 0:
            signatures.append((sig.time + pad if sig.time > 0 else 0, sig.numerator, sig.denominator))
    result.time_signatures.clear()
    previous = None
    for tick, numerator, denominator in signatures:
        if (numerator, denominator) != previous:
            result.time_signatures.append(symusic.TimeSignature(tick, numerator, denominator))
        previous = (numerator, denominator)
