"""Fuzzing the public loaders and CLI entry points with hostile inputs built from real data.

Inputs: byte mutations of a real chorale MIDI file and valid but hostile edits of it (through
``compose.continue_midi``/``infill_midi`` with an untrained tiny composer and ``notewave generate``),
random audio arrays and WAV files (NaN, inf, empty, one sample, 8 channels, 8 kHz and 192 kHz),
malformed code files and malformed checkpoints (truncated safetensors, empty/garbled config.json,
a missing tokenizer, a pickle instead of safetensors). The contract is in
:mod:`tests.reliability.harness`. ``make fuzz`` runs the same tests with ``NOTEWAVE_FUZZ_SCALE``
raised to many thousands of cases.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from symusic import Score

from notewave.paths import DATA_DIR, JSB_MIDI_DIR
from tests.reliability.harness import check_api, check_cli, examples

CHORALE = JSB_MIDI_DIR / "test" / "jsb_test_000.mid"
FUZZ = settings(
    deadline=None,
    database=None,
    # the same cases on every machine in `make test`; `make fuzz` (NOTEWAVE_FUZZ_RANDOM=1) draws new ones
    derandomize=os.environ.get("NOTEWAVE_FUZZ_RANDOM") != "1",
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def fuzz(n: int) -> settings:
    """The fuzz settings with ``n`` examples (scaled by ``$NOTEWAVE_FUZZ_SCALE``)."""
    return settings(FUZZ, max_examples=examples(n))


def two_bars() -> bytes:
    """The first two bars of a real chorale as MIDI bytes (small: fast cases)."""
    score = Score(str(CHORALE))
    return bytes(score.clip(0, 2 * 4 * score.ticks_per_quarter, clip_end=True).dumps_midi())


SEED_MIDI = two_bars()


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with random byte flips, insertions, deletions and a possible truncation."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "flip", "flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(0, len(out) - 1)))
        if op == "flip" and out:
            out[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and out:
            del out[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del out[pos:]
    return bytes(out)


# ---- MIDI -----------------------------------------------------------------------------------
@fuzz(200)
@given(blob=mutated_bytes(SEED_MIDI))
def test_mutated_midi_through_the_loader(blob):
    from notewave.core.midi import load_score

    path = Path(tempfile.mkdtemp()) / "mutated.mid"
    path.write_bytes(blob)
    try:
        check_api("midi: load_score", lambda: load_score(path), names=["mutated.mid"], seconds=10)
    finally:
        shutil.rmtree(path.parent)


@fuzz(12)
@given(blob=mutated_bytes(SEED_MIDI))
def test_mutated_midi_through_generate_and_render(blob, tmp_path_factory, tiny_model, tiny_checkpoint):
    from notewave.symbolic.compose import continue_midi

    folder = tmp_path_factory.mktemp("midi")
    prompt = folder / "mutated.mid"
    prompt.write_bytes(blob)
    check_api(
        "midi: compose.continue_midi",
        lambda: continue_midi(tiny_model.model, tiny_model.vocab, prompt, bars=1, seed=0),
        names=["mutated.mid"],
    )
    out = folder / "out" / "cont.mid"
    out.parent.mkdir()
    argv = ["generate", "--prompt", prompt, "--bars", "1", "--out", out, "--seed", "0"]
    check_cli(
        "midi: notewave generate", [*argv, "--checkpoint", tiny_checkpoint], [out], names=["mutated.mid"]
    )
    render_out = folder / "out" / "render.wav"
    check_cli("midi: notewave render", ["render", prompt, render_out], [render_out], names=["mutated.mid"])


@st.composite
def hostile_scores(draw: st.DrawFn) -> bytes:
    """A real chorale excerpt edited into valid but hostile MIDI: odd meters and tempi, notes
    moved, stretched to zero or to minutes, pitches out of range, drums, programs, empty tracks."""
    from symusic import Note, Tempo, TimeSignature, Track

    score = Score.from_midi(SEED_MIDI)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(
                ["meter", "tempo", "stretch", "shift", "pitch", "drums", "program", "track", "tpq"]
            )
        )
        track = score.tracks[draw(st.integers(0, len(score.tracks) - 1))]
        if op == "meter":
            num, den = draw(
                st.sampled_from([(4, 4), (3, 4), (6, 8), (7, 8), (5, 4), (1, 1), (12, 8), (9, 16)])
            )
            score.time_signatures = [TimeSignature(0, num, den)]
        elif op == "tempo":
            score.tempos = [Tempo(0, qpm=draw(st.sampled_from([1.0, 20.0, 120.0, 400.0, 2000.0])))]
        elif op == "stretch" and len(track.notes):
            note = track.notes[draw(st.integers(0, len(track.notes) - 1))]
            note.duration = draw(st.sampled_from([0, 1, 480 * 60, 480 * 4 * 40]))
        elif op == "shift" and len(track.notes):
            note = track.notes[draw(st.integers(0, len(track.notes) - 1))]
            note.time = draw(st.sampled_from([0, note.time + 1, note.time * 3 + 7, 480 * 4 * 30]))
        elif op == "pitch" and len(track.notes):
            track.notes[draw(st.integers(0, len(track.notes) - 1))].pitch = draw(
                st.sampled_from([0, 1, 20, 109, 127])
            )
        elif op == "drums":
            track.is_drum = not track.is_drum
        elif op == "program":
            track.program = draw(st.integers(0, 127))
        elif op == "track":
            extra = Track(name="extra", program=draw(st.integers(0, 127)), is_drum=draw(st.booleans()))
            if draw(st.booleans()):
                extra.notes.append(Note(draw(st.integers(0, 480 * 8)), 240, 60, 90))
            score.tracks.append(extra)
        elif op == "tpq":
            score = score.resample(draw(st.sampled_from([24, 96, 960])), min_dur=0)
    return bytes(score.dumps_midi())


def edited(meter: tuple[int, int] | None = None, extra_tracks: int = 0, drums_only: bool = False) -> bytes:
    """The seed excerpt with a fixed hostile edit (the examples every run includes)."""
    from symusic import TimeSignature

    score = Score.from_midi(SEED_MIDI)
    if meter is not None:
        score.time_signatures = [TimeSignature(0, *meter)]
    for index in range(extra_tracks):
        track = score.tracks[index % 4].copy()
        track.name = f"copy {index}"
        score.tracks.append(track)
    for track in score.tracks if drums_only else []:
        track.is_drum = True
    return bytes(score.dumps_midi())


@fuzz(10)
@given(blob=hostile_scores())
@example(blob=edited(meter=(9, 16)))  # a meter without a token
@example(blob=edited(extra_tracks=13))  # 17 tracks
@example(blob=edited(drums_only=True))
def test_hostile_but_valid_midi_through_generate_and_render(
    blob, tmp_path_factory, tiny_model, tiny_checkpoint
):
    from notewave.symbolic.compose import continue_midi

    folder = tmp_path_factory.mktemp("hostile")
    prompt = folder / "hostile.mid"
    prompt.write_bytes(blob)
    model, vocab = tiny_model.model, tiny_model.vocab
    check_api(
        "hostile midi: compose.continue_midi",
        lambda: continue_midi(model, vocab, prompt, bars=1, seed=0, instruments="bass"),
        names=["hostile.mid"],
    )
    out = folder / "out" / "cont.mid"
    out.parent.mkdir()
    argv = [
        "generate",
        "--prompt",
        prompt,
        "--bars",
        "1",
        "--out",
        out,
        "--seed",
        "0",
        "--checkpoint",
        tiny_checkpoint,
    ]
    if check_cli("hostile midi: notewave generate", argv, [out], names=["hostile.mid"]) == "accepted":
        assert Score(str(out)).note_num() >= Score.from_midi(blob).note_num()
    wav = folder / "out" / "render.wav"
    argv = ["render", prompt, wav, "--sample-rate", "16000", "--max-seconds", "120"]
    check_cli("hostile midi: notewave render", argv, [wav], names=["hostile.mid"])


# ---- audio ----------------------------------------------------------------------------------
@st.composite
def audio_arrays(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """An array ``[channels, samples]`` (or 1-D) with hostile sizes, rates and values."""
    rate = draw(st.sampled_from([8000, 16000, 32000, 44100, 192000]))
    channels = draw(st.sampled_from([1, 2, 8]))
    samples = draw(st.sampled_from([0, 1, 2, 100, rate // 4]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    wav = (rng.standard_normal((channels, samples)) * draw(st.sampled_from([0.0, 1e-6, 0.3, 4.0]))).astype(
        np.float32
    )
    poison = draw(st.sampled_from([None, np.nan, np.inf, -np.inf]))
    if poison is not None and samples:
        wav[rng.integers(channels), rng.integers(samples)] = poison
    if draw(st.booleans()) and channels == 1:
        wav = wav[0]
    return wav, rate


@fuzz(40)
@given(case=audio_arrays())
def test_audio_arrays_through_the_loaders(case, shipped_codec):
    from notewave.audio.codec.model import encode_audio
    from notewave.bridge.chroma import chroma_from_audio
    from notewave.bridge.transcription.transcribe import transcribe
    from notewave.core.audio_io import load_audio

    wav, rate = case
    check_api("audio array: load_audio", lambda: load_audio(wav, 32000, source_rate=rate))
    check_api("audio array: chroma_from_audio", lambda: chroma_from_audio(wav, rate))
    check_api("audio array: codec encode", lambda: encode_audio(shipped_codec, wav, sample_rate=rate))
    check_api("audio array: transcribe", lambda: transcribe(wav, rate))


@fuzz(10)
@given(case=audio_arrays())
def test_audio_files_through_the_cli(case, tmp_path_factory):
    wav, rate = case
    folder = tmp_path_factory.mktemp("audio")
    path = folder / "hostile.wav"
    data = wav.T if wav.ndim == 2 else wav
    sf.write(path, data, rate, subtype="FLOAT")
    outputs = folder / "out"
    outputs.mkdir()
    mid, npz = outputs / "notes.mid", outputs / "codes.npz"
    check_cli("audio file: notewave transcribe", ["transcribe", path, mid], [mid], names=["hostile.wav"])
    check_cli(
        "audio file: notewave codec encode", ["codec", "encode", path, npz], [npz], names=["hostile.wav"]
    )


# ---- code files -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped_codec():
    from notewave.audio.codec.model import Codec

    return Codec.from_pretrained()


@pytest.fixture(scope="module")
def real_codes(tmp_path_factory, shipped_codec) -> Path:
    """A real code file: 1 s of Wesnoth music encoded by the shipped codec."""
    from notewave.audio.codec.files import save_codes
    from notewave.audio.codec.model import encode_audio

    wesnoth = Path("/usr/share/games/wesnoth/1.16/data/core/music/battle.ogg")
    if not wesnoth.is_file():
        pytest.skip("needs the Debian wesnoth-1.16-music package")
    path = tmp_path_factory.mktemp("codes") / "real.npz"
    codes = encode_audio(shipped_codec, str(wesnoth), duration=1.0)
    save_codes(path, codes[0], shipped_codec, num_samples=32000)
    return path


@st.composite
def malformed_code_files(draw: st.DrawFn, real: bytes) -> tuple[str, bytes | dict[str, np.ndarray]]:
    """Bytes of a broken .npz, or arrays to save as a structurally wrong one."""
    kind = draw(st.sampled_from(["bytes", "arrays", "empty", "npy"]))
    if kind == "bytes":
        return kind, draw(mutated_bytes(real))
    if kind == "empty":
        return kind, b""
    if kind == "npy":
        return kind, b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }"
    import io

    with np.load(io.BytesIO(real)) as data:
        arrays = {k: data[k] for k in data.files}
    key = draw(st.sampled_from(sorted(arrays)))
    choice = draw(
        st.sampled_from(["bool", "float", "nan", "str", "complex", "negative", "huge", "shape", "drop"])
    )
    value = arrays[key]
    replacements = {
        "bool": value.astype(bool) if value.dtype != object else np.array(True),
        "float": value.astype(np.float64) + 0.5 if value.dtype.kind in "iuf" else np.array(0.5),
        "nan": np.full(value.shape, np.nan) if value.dtype.kind in "iuf" else np.array(np.nan),
        "str": np.array("text"),
        "complex": value.astype(np.complex128) if value.dtype.kind in "iuf" else np.array(1j),
        "negative": -np.abs(value.astype(np.int64)) - 1 if value.dtype.kind in "iuf" else np.array(-5),
        "huge": value.astype(np.int64) + 2**40 if value.dtype.kind in "iuf" else np.array(2**40),
        "shape": value.reshape(-1)[:3] if value.size else np.zeros((2, 2, 2), np.int64),
    }
    if choice == "drop":
        del arrays[key]
    else:
        arrays[key] = replacements[choice]
    return kind, arrays


@fuzz(40)
@given(data=st.data())
def test_malformed_code_files_through_decode(data, real_codes, tmp_path_factory):
    kind, content = data.draw(malformed_code_files(real_codes.read_bytes()))
    folder = tmp_path_factory.mktemp("npz")
    path = folder / "broken.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.savez(path, **content)
    out = folder / "decoded.wav"
    check_cli(
        f"code file: notewave codec decode ({kind})", ["codec", "decode", path, out], [out], ["broken.npz"]
    )


# ---- checkpoints ----------------------------------------------------------------------------
CHECKPOINTS = {
    "midi-lm": None,  # the tiny composer of the `tiny_checkpoint` fixture (the shipped one may be absent)
    "codec": DATA_DIR / "checkpoints" / "codec",
    "audio-lm": DATA_DIR / "checkpoints" / "audio",
    "transcriber": DATA_DIR / "checkpoints" / "transcriber",
}


def loader(kind: str):
    """The public loader of a checkpoint kind."""
    if kind == "midi-lm":
        from notewave.pipelines.composer import Composer

        return Composer.from_pretrained
    if kind == "codec":
        from notewave.audio.codec.model import Codec

        return Codec.from_pretrained
    if kind == "audio-lm":
        from notewave.pipelines.sound import SoundGenerator

        return SoundGenerator.from_pretrained
    from notewave.bridge.transcription.transcribe import load_transcriber

    return load_transcriber


def corrupt(folder: Path, how: str, cut: float, blob: bytes) -> None:
    """Damage a copied checkpoint folder in one of the ways a disk, a user or a kill can."""
    weights, config = folder / "model.safetensors", folder / "config.json"
    if how == "truncate-weights":
        weights.write_bytes(weights.read_bytes()[: int(cut * weights.stat().st_size)])
    elif how == "garble-weights":
        raw = bytearray(weights.read_bytes())
        pos = int(cut * (len(raw) - len(blob)))
        raw[pos : pos + len(blob)] = blob
        weights.write_bytes(bytes(raw))
    elif how == "empty-config":
        config.write_text("")
    elif how == "garble-config":
        config.write_bytes(blob)
    elif how == "list-config":
        config.write_text("[1, 2, 3]")
    elif how == "truncate-config":
        text = config.read_text()
        config.write_text(text[: int(cut * len(text))])
    elif how == "missing-tokenizer":
        (folder / "tokenizer.json").unlink(missing_ok=True)
    elif how == "pickle-weights":
        import pickle

        weights.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    elif how == "missing-weights":
        weights.unlink()


HOW = [
    "truncate-weights", "garble-weights", "empty-config", "garble-config", "list-config",
    "truncate-config", "missing-tokenizer", "pickle-weights", "missing-weights",
]  # fmt: skip


@fuzz(36)
@given(
    kind=st.sampled_from(sorted(CHECKPOINTS)),
    how=st.sampled_from(HOW),
    cut=st.floats(0.0, 1.0),
    blob=st.binary(min_size=1, max_size=64),
)
def test_malformed_checkpoints_through_the_loaders(kind, how, cut, blob, tmp_path_factory, tiny_checkpoint):
    folder = tmp_path_factory.mktemp("ckpt") / f"broken-{kind}"
    shutil.copytree(CHECKPOINTS[kind] or tiny_checkpoint, folder)
    if kind == "audio-lm" and not (folder / "codec").is_dir():  # the LM's own codec travels with it
        shutil.copytree(CHECKPOINTS["codec"], folder / "codec")
    corrupt(folder, how, cut, blob)
    check_api(f"checkpoint: {kind} ({how})", lambda: loader(kind)(folder), names=[folder.name])


@fuzz(8)
@given(how=st.sampled_from(HOW), cut=st.floats(0.0, 1.0), blob=st.binary(min_size=1, max_size=64))
def test_malformed_checkpoints_through_the_cli(how, cut, blob, tmp_path_factory, tiny_checkpoint):
    folder = tmp_path_factory.mktemp("ckpt")
    midi_lm, audio_lm = folder / "broken-midi-lm", folder / "broken-audio-lm"
    shutil.copytree(tiny_checkpoint, midi_lm)
    shutil.copytree(CHECKPOINTS["audio-lm"], audio_lm)
    corrupt(midi_lm, how, cut, blob)
    corrupt(audio_lm, how, cut, blob)
    out = folder / "out.mid"
    argv = ["generate", "--prompt", CHORALE, "--prompt-bars", "2", "--bars", "1", "--out", out]
    check_cli(
        f"checkpoint: notewave generate ({how})", [*argv, "--checkpoint", midi_lm], [out], [midi_lm.name]
    )
    wav = folder / "out.wav"
    argv = ["generate-audio", "--seconds", "0.2", "--out", wav, "--checkpoint", audio_lm]
    check_cli(f"checkpoint: notewave generate-audio ({how})", argv, [wav], [audio_lm.name])


def test_zip_bomb_style_code_file_is_refused_cleanly(tmp_path):
    """A .npz whose member claims a huge array (header only) is refused without allocating it."""
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as z:
        header = "{'descr': '<i8', 'fortran_order': False, 'shape': (8, 100000000000), }"
        z.writestr("codes.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    check_cli(
        "code file: huge header",
        ["codec", "decode", path, tmp_path / "x.wav"],
        [tmp_path / "x.wav"],
        ["huge.npz"],
    )


def test_one_sample_at_44k_is_refused_by_name(tmp_path):
    """Found by `make fuzz`: one sample at 44.1 kHz resamples to nothing at the transcriber's 16 kHz
    (was a numpy ValueError from deep inside)."""
    from notewave.bridge.transcription.transcribe import transcribe

    one = np.array([[0.0377]], dtype=np.float32)
    check_api("audio array: transcribe (1 sample)", lambda: transcribe(one, 44100), names=["too short"])
    path = tmp_path / "one.wav"
    sf.write(path, one[0], 44100, subtype="FLOAT")
    out = tmp_path / "one.mid"
    assert check_cli(
        "audio file: notewave transcribe (1 sample)", ["transcribe", path, out], [out], ["one.wav"]
    ) == ("rejected")
