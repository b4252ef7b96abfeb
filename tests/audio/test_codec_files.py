"""Code files (``save_codes`` / ``load_codes``), ``notewave codec encode|decode`` on bad and long
inputs, chunked encode/decode and block-wise audio loading: on real music (the Wesnoth game
music, stereo OGG at 44.1 kHz) with the shipped codec (``data/checkpoints/codec``).
"""

from __future__ import annotations

import json
import math
import re
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from notewave.audio.codec.data import WESNOTH_MUSIC
from notewave.audio.codec.files import load_codes, save_codes
from notewave.audio.codec.model import DEFAULT_CODEC_CHECKPOINT, Codec
from notewave.cli import main
from notewave.core.audio_io import BLOCK_FRAMES, load_audio
from notewave.errors import ConfigError, DataError

TRACK = WESNOTH_MUSIC / "battle-epic.ogg"
pytestmark = pytest.mark.skipif(
    not TRACK.is_file(), reason="needs the real recordings of `apt-get install wesnoth-1.16-music`"
)


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec.from_pretrained()  # 32 kHz, hop 640, K x 1024 codes


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    """20 s of real orchestral music, mono at 32 kHz: float32 ``[1, 1, 640000]``."""
    wav, _ = load_audio(TRACK, 32000, offset=20.0, duration=20.0)
    return torch.from_numpy(wav)[None]


@pytest.fixture(scope="module")
def code_file(codec: Codec, clip: torch.Tensor, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The codes of the first 3 s of the clip (``[K, 150]``, ``num_samples`` 96000)."""
    path = tmp_path_factory.mktemp("codes") / "codes.npz"
    return save_codes(path, codec.encode(clip[..., :96000]), codec, num_samples=96000)


def _rewrite(src: Path, dst: Path, **changes: Any) -> Path:
    """Copy the code file ``src`` to ``dst`` with keys replaced (a value of None drops the key)."""
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    np.savez(dst, **{k: v for k, v in arrays.items() if v is not None})
    return dst


def _decode_fails(path: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``notewave codec decode path out``: exit 2, one stderr line naming ``path``, no ``out``."""
    assert main(["codec", "decode", str(path), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("notewave: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err and not out.exists()
    return err


# ---- unreadable files: one line, exit 2 ------------------------------------------------------------
def test_decode_of_unreadable_files_is_one_line_error(code_file: Path, tmp_path: Path, capsys) -> None:
    real = code_file.read_bytes()
    bad = {
        "empty.npz": b"",  # was EOFError
        "truncated.npz": real[: len(real) // 2],  # was BadZipFile
        "crc.npz": real[:200] + bytes([real[200] ^ 0xFF]) + real[201:],  # a flipped byte in the codes
        "text.npz": b"not a zip archive",
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    np.save(tmp_path / "array.npy", np.zeros((4, 150), np.int16))  # .npy data named .npz: was TypeError
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")
    (tmp_path / "folder.npz").mkdir()
    errors = {
        name: _decode_fails(tmp_path / name, tmp_path / f"{name}.wav", capsys)
        for name in [*bad, "array.npz", "folder.npz", "missing.npz"]
    }
    assert "empty (0 bytes)" in errors["empty.npz"] and "single .npy array" in errors["array.npz"]
    assert "truncated or corrupt" in errors["truncated.npz"] and "not found" in errors["missing.npz"]
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_codes(tmp_path / "crc.npz")


# ---- malformed contents: DataError naming the file --------------------------------------------------
_SHIPPED = json.loads((DEFAULT_CODEC_CHECKPOINT / "config.json").read_text())
K = _SHIPPED["num_codebooks"] + _SHIPPED.get("detail_codebooks", 0)  # the shipped codec's, main + detail
CODES = np.zeros((K, 150), np.int16)
BAD_FIELDS = {
    "bool codes": ({"codes": CODES.astype(bool)}, "must be integers"),
    "float codes": ({"codes": CODES.astype(np.float32)}, "must be integers"),
    "NaN codes": ({"codes": np.full((K, 150), np.nan)}, "must be integers"),
    "string codes": ({"codes": CODES.astype(str)}, "must be integers"),
    "complex codes": ({"codes": CODES.astype(np.complex64)}, "must be integers"),
    "codes >= N": ({"codes": CODES + 1024}, r"in \[0, 1024\)"),
    "negative codes": ({"codes": CODES - 1}, r"in \[0, 1024\)"),
    "1-D codes": ({"codes": CODES[0]}, "shape"),
    "batch of 2": ({"codes": np.stack([CODES, CODES])}, "shape"),
    "4-D codes": ({"codes": CODES[None, None]}, "shape"),
    "no frames": ({"codes": CODES[:, :0]}, "shape"),
    "K + 1 codebooks": ({"codes": np.zeros((K + 1, 150), np.int16)}, "shape"),
    "no codes": ({"codes": None}, "not a notewave code file"),
    "negative num_samples": ({"num_samples": np.int64(-5)}, "non-negative"),  # was 95,995 samples
    "num_samples > T * hop": ({"num_samples": np.int64(96001)}, "does not fit 150 frames"),
    "num_samples = (T-1) * hop": ({"num_samples": np.int64(95360)}, "does not fit 150 frames"),
    "float num_samples": ({"num_samples": np.float64(96000.0)}, "num_samples must be int"),
    "bool num_samples": ({"num_samples": np.bool_(True)}, "num_samples must be int"),
    "array num_samples": ({"num_samples": np.array([96000, 1])}, "single value"),
    "string sample_rate": ({"sample_rate": np.str_("32000")}, "sample_rate must be int"),
    "zero hop_length": ({"hop_length": np.int64(0)}, "hop_length must be positive"),
    "other hop_length": ({"hop_length": np.int64(320)}, "hop_length 320"),
    "NaN frame_rate": ({"frame_rate": np.float64(np.nan)}, "frame_rate must be positive"),
    "wrong frame_rate": ({"frame_rate": np.float64(49.0)}, "frame_rate 49.0"),
    "int config_hash": ({"config_hash": np.int64(7)}, "config_hash must be str"),
    "config not JSON": ({"config": np.str_("{oops")}, "config is not a codec config"),
    "complex extra key": ({"extra": np.complex64(1j)}, "extra must be a plain value"),
}


@pytest.mark.parametrize("case", list(BAD_FIELDS))
def test_malformed_code_files_are_refused(case: str, code_file: Path, tmp_path: Path, capsys) -> None:
    changes, match = BAD_FIELDS[case]
    path = _rewrite(code_file, tmp_path / "bad.npz", **changes)
    with pytest.raises(DataError, match=match) as info:
        load_codes(path)  # the file's own config gives N, K and the hop length
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    if "hash" not in case and "config" not in case:  # (those are a different codec to the CLI)
        assert re.search(match, _decode_fails(path, tmp_path / "out.wav", capsys))


def test_valid_variants_are_read(codec: Codec, code_file: Path, tmp_path: Path) -> None:
    codes, meta = load_codes(code_file, codec)
    assert codes.dtype == torch.int64 and codes.shape == (K, 150)
    assert meta["num_samples"] == 96000 and meta["sample_rate"] == 32000 and meta["hop_length"] == 640
    raw = codes.numpy()
    variants = {  # [1, K, T], int64, the smallest num_samples of 150 frames, no num_samples, an extra key
        "batched": {"codes": raw[None]},
        "int64": {"codes": raw},
        "slack": {"num_samples": np.int64(95361)},
        "no length": {"num_samples": None},
        "extra": {"note": np.str_("hello"), "table": np.ones((3, 3))},
    }
    for name, changes in variants.items():
        got, meta = load_codes(_rewrite(code_file, tmp_path / f"{name}.npz", **changes), codec)
        assert torch.equal(got, codes), name
    assert meta["note"] == "hello" and "table" not in meta and meta["num_samples"] == 96000
    assert load_codes(tmp_path / "no length.npz")[1]["num_samples"] == 150 * 640
    with pytest.raises(ConfigError, match="do not encode to 150 frames"):
        save_codes(tmp_path / "x.npz", codes, codec, num_samples=-5)
    assert not (tmp_path / "x.npz").exists()


# ---- chunked encode / decode ----------------------------------------------------------------------
def test_chunked_encode_and_decode_match_one_shot_on_real_music(codec: Codec, clip: torch.Tensor) -> None:
    enc_calls: list[int] = []
    dec_calls: list[int] = []
    hooks = [
        codec.encoder.register_forward_hook(lambda m, i, o: enc_calls.append(i[0].shape[-1])),
        codec.decoder.register_forward_hook(lambda m, i, o: dec_calls.append(i[0].shape[-1])),
    ]
    try:
        chunked = codec.encode(clip)  # default: windows of 5 s
        audio = codec.decode(chunked)
    finally:
        for hook in hooks:
            hook.remove()
    spans = codec.chunk_spans(1000)
    context = spans[0][3] - spans[0][1]  # frames of context each side
    assert [s[:2] for s in spans] == [(0, 250), (250, 500), (500, 750), (750, 1000)] and 1 <= context < 50
    assert len(enc_calls) == 4 and max(enc_calls) == (250 + 2 * context) * 640  # 20 s in four windows
    assert len(dec_calls) == 4 and max(dec_calls) <= 250 + 2 * 50
    one_shot = codec.encode(clip, chunk_seconds=None)
    same = (chunked == one_shot).double().mean().item()
    print(f"identical codes, 5 s windows vs one shot on 20 s of real music: {same:.4%}")
    assert chunked.shape == one_shot.shape == (1, K, 1000) and same >= 0.999
    assert audio.shape == (1, 1, 640000)
    assert (audio - codec.decode(chunked, chunk_seconds=None)).abs().max() < 1e-4
    assert torch.equal(
        codec.encode(clip[..., :12345], chunk_seconds=0.1),
        codec.encode(clip[..., :12345], chunk_seconds=None),
    )
    with pytest.raises(ConfigError, match="chunk_seconds"):
        codec.encode(clip, chunk_seconds=0)


def test_cli_round_trip_in_small_windows(codec: Codec, tmp_path: Path, capsys) -> None:
    stereo, rate = load_audio(TRACK, None, mono=False, offset=40.0, duration=6.01)
    assert stereo.shape == (2, round(6.01 * 44100)) and rate == 44100
    sf.write(tmp_path / "in.wav", stereo.T, rate)
    argv = ["codec", "encode", str(tmp_path / "in.wav"), str(tmp_path / "c.npz"), "--chunk-seconds", "1"]
    assert main(argv) == 0
    codes, meta = load_codes(tmp_path / "c.npz", codec)
    wav, _ = load_audio(tmp_path / "in.wav", 32000)
    assert meta["num_samples"] == wav.shape[-1] and codes.shape == (K, math.ceil(wav.shape[-1] / 640))
    one_shot = codec.encode(torch.from_numpy(wav)[None], chunk_seconds=None)[0]
    assert (codes == one_shot).double().mean() >= 0.999
    argv = ["codec", "decode", str(tmp_path / "c.npz"), str(tmp_path / "out.wav"), "--chunk-seconds", "1"]
    assert main(argv) == 0 and "6.01 s" in capsys.readouterr().out
    out, out_rate = sf.read(tmp_path / "out.wav", dtype="int16")
    reference = codec.decode(codes[None], chunk_seconds=None)[0, 0, : meta["num_samples"]].numpy()
    assert out_rate == 32000 and out.shape == (meta["num_samples"],)
    assert np.abs(out / 32767.0 - reference).max() < 2 / 32767  # 16-bit rounding
    argv[3] = str(tmp_path / "x.wav")
    assert main([*argv[:4], "--chunk-seconds", "-1"]) == 2 and not (tmp_path / "x.wav").exists()


# ---- block-wise loading ---------------------------------------------------------------------------
@pytest.mark.parametrize("mono", [True, False])
def test_block_reading_equals_one_shot_soxr(mono: bool) -> None:
    assert 10 * 44100 > 5 * BLOCK_FRAMES  # several blocks
    wav, rate = load_audio(TRACK, 32000, mono=mono, offset=3.3, duration=10.0)
    data, _ = sf.read(TRACK, start=int(3.3 * 44100), frames=441000, dtype="float32", always_2d=True)
    data = data.mean(axis=1, keepdims=True) if mono else data
    expected = soxr.resample(data, 44100, 32000, quality="HQ").T
    assert rate == 32000 and wav.dtype == np.float32 and wav.flags.c_contiguous
    assert np.array_equal(wav, expected.reshape(wav.shape))


def test_loading_holds_no_full_length_copies() -> None:
    load_audio(TRACK, 32000, duration=0.1)  # imports
    tracemalloc.start()
    try:
        wav, _ = load_audio(TRACK, 32000, offset=5.0, duration=20.0)  # 20 s stereo 44.1 kHz -> mono 32 kHz
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one float32 output plus a few blocks (reading it whole, then downmixing: over 10 MB)
    assert wav.shape == (1, 640000) and peak < wav.nbytes + 8 * BLOCK_FRAMES * 4


def test_encode_of_bad_audio_names_the_file(tmp_path: Path, capsys) -> None:
    real, rate = load_audio(TRACK, None, mono=False, offset=30.0, duration=0.5)  # [2, 22050] at 44.1 kHz
    poisoned = real.copy()
    poisoned[1, 20000] = np.nan  # in the first block
    files = {
        "nan.wav": (poisoned, rate, "NaN or infinite"),
        "empty.wav": (real[:, :0], rate, "is empty"),
        "two.wav": (real[:, :2], 192000, "too short: 2 samples at 192000 Hz"),
    }
    for name, (wav, wav_rate, match) in files.items():
        sf.write(tmp_path / name, wav.T, wav_rate, subtype="FLOAT")
        out = tmp_path / f"{name}.npz"
        assert main(["codec", "encode", str(tmp_path / name), str(out)]) == 2 and not out.exists()
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(tmp_path / name) in err and match in err, err
