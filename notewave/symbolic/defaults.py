"""Default weights of the composer's decoding guides, and how each was picked on validation pieces.

The guides themselves: :mod:`~notewave.symbolic.key_guide`, :mod:`~notewave.symbolic.density_guide`,
:mod:`~notewave.symbolic.length_guide` and :class:`~notewave.symbolic.guide.ConsonanceGuide`; the
edits that use them: :mod:`~notewave.symbolic.compose`.
"""

#: Default consonance guidance of ``accompany`` in nats (see :class:`ConsonanceGuide`).
CONSONANCE = 2.0
#: Default weight of the key guide of every edit (see :class:`KeyGuide`). Picked on the validation
#: pieces (2 per style, 12 styles) with the session-8 composer: weight 0, 0.5, 1 give a key cosine
#: of 0.69, 0.82, 0.87 for continuations (real bars: 0.77) and 0.64, 0.80, 0.85 for infills (real:
#: 0.83), and a pitch-class entropy against the real bars of +0.30, -0.25, -0.62 bits (infill
#: +0.29, -0.11, -0.42): at 0.5 the new bars keep the key about as well as the real ones do.
#: Session 11 anchored the profile to the given music (a continuation's prompt, an infill's sides;
#: 3 validation pieces per style, session-10 composer, density guide on): continuation key cosine
#: 0.82 -> 0.87 and entropy against the real bars -0.24 -> -0.14 bits; infill 0.78 -> 0.80, -0.06 ->
#: -0.04.
KEY = 0.5
#: Default weight of the key guide's balance term in continue and infill (see :class:`KeyGuide`).
#: Picked on the validation pieces (3 per style, 12 styles, seeds 0 and 1; session-12 composer,
#: every other guide at its default; runs/s15): without it the key cosine is 0.887 / 0.873
#: (continuation; styles >= 0.8: 11 and 10 of 12) and 0.879 / 0.883 (infill; 11 of 12), and the new
#: bars' pitch-class entropy is 0.18-0.25 / 0.13 bits under the real bars'; at 0.5 the key cosine is
#: 0.921 / 0.919 and 0.931 / 0.935 with every style >= 0.8, entropy -0.02 / -0.05 and +0.06 / +0.02
#: bits (the real bars' variety); at 1 0.940 / 0.937 and 0.948 / 0.948 but +0.07 to +0.15 bits, more
#: varied than the real bars. Density ratio, length shift and polyphony stay within seed noise.
KEY_BALANCE = 0.5
#: Default strength of the density guide of continue and infill in nats (see :class:`DensityGuide`).
#: Picked on the validation pieces (3 per style, 12 styles) with the session-10 composer: infill
#: density ratio min/median 0.29/1.07 without it, 0.40/1.07 at 2 nats and 0.36/0.96 at 4 with a
#: ramp to half the notes around, 0.57/1.12 at 4 and 0.92/1.10 at 8 with a step at 0.8 of them;
#: pitch-class entropy against the real bars -0.15 bits without it, -0.06 at 8 (continuation, at
#: half the notes of the prompt's last bars: 0.52/1.00 -> 0.70/1.08, entropy -0.27 -> -0.24).
DENSITY = 8.0
#: Default weight of the length guide of continue and infill (see :class:`LengthGuide`). Picked on
#: the validation pieces (3 per style, 12 styles; session-12 composer): how far each track's median
#: new note length is from its own around the span (``length_shift``, octaves; the real bars 0.24
#: continuation / 0.20 infill) is 0.79 / 0.93 without the guide (mostly too short: 9 and 10 of 29
#: pieces more than an octave off); with a half-octave kernel 0.38 / 0.28 at 1, 0.22 / 0.25 at 1.5
#: and 0.19 / 0.20 at 2, but chorale infills came out denser than Bach's (see ``LENGTH_SIGMA``);
#: with the 1-octave kernel 0.36 / 0.33 at 1.5 (seed 1: 0.45 / 0.40) and 0.24 / 0.30 at 2 (bach
#: infill density 1.20 / 1.26 at 1.5, 1.33 / 1.29 at 2; real 1.10). Key cosine and pitch-class
#: entropy stay within seed noise (runs/s13).
LENGTHS = 1.5
