"""Objective quality of the audio codec on held-out audio, and the same numbers for Opus.

Metrics (reference ``x`` and estimate ``x_hat``, mono, same rate and length):

* ``mel``: multi-scale log-mel L1 distance (:class:`~notewave.audio.codec.losses.MultiScaleMelLoss`,
  nats per mel bin; 0 for identical audio, lower is better);
* ``stft``: multi-scale spectral convergence + log-magnitude L1
  (:class:`~notewave.audio.codec.losses.MultiScaleSTFTLoss`; 0 for identical audio);
* ``si_sdr``: scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019, "SDR -
  half-baked or well done?"), per clip then averaged; higher is better. Waveform-matching, so
  codecs that get the spectrum right but not the phase score low;
* ``chroma``: pitch-class fidelity, the frame-wise cosine between the argmax chromagrams
  (:func:`~notewave.bridge.chroma.chroma_from_audio`, 50 Hz, silent frames skipped) of the
  reference and the estimate, per clip then averaged; 1 when every frame keeps its strongest
  pitch class, about 1/12 to 0.1 by chance. It is the ceiling of a codec-token model's melody
  adherence (MusicGen's metric, Copet et al. 2023);
* ``kbps``: bitrate, ``K * frame_rate * log2(N) / 1000`` for the codec; for Opus the payload
  rate without the Ogg container (``opusinfo``), plus ``file_kbps`` with it;
* codebook usage per codebook: perplexity (exp of the code-histogram entropy; 1..N) and the
  share of dead codes (never used on these clips).

:func:`evaluate_codec` computes them over a set of clips, and with ``groups`` (e.g. the package of
each held-out track of ``notewave data game-music``: :func:`package_clips`) also per group;
:func:`format_table` and :func:`format_group_table` print them.

Opus (RFC 6716; https://opus-codec.org) runs through ``opusenc --bitrate B`` and ``opusdec``
from opus-tools on temporary WAV files at 48 kHz (Opus' native rate); the result is resampled
back. Without opus-tools installed (``apt-get install opus-tools``), the Opus rows say so.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from notewave.audio.codec.losses import MultiScaleMelLoss, MultiScaleSTFTLoss
from notewave.audio.codec.quantize import codebook_usage
from notewave.core.audio_io import load_audio, resample
from notewave.core.io import atomic_path
from notewave.errors import AudioError, ConfigError

if TYPE_CHECKING:
    from notewave.audio.codec.model import Codec

OPUS_RATE = 48000
OPUS_MISSING = "opus-tools (opusenc/opusdec) is not installed: `sudo apt-get install opus-tools`"
_MEL: dict[int, MultiScaleMelLoss] = {}


def _batch(wav: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``[N]``, ``[1, N]`` or ``[B, 1, N]`` audio as float32 torch ``[B, 1, N]``."""
    x = torch.as_tensor(np.asarray(wav) if not isinstance(wav, torch.Tensor) else wav).float().cpu()
    if x.dim() == 1:
        x = x[None, None]
    elif x.dim() == 2:
        x = x[:, None]
    if x.dim() != 3 or x.shape[1] != 1 or x.shape[-1] == 0:
        raise AudioError(f"metrics need mono audio [N], [B, N] or [B, 1, N], got shape {tuple(x.shape)}")
    return x


def _pair(reference: Any, estimate: Any) -> tuple[torch.Tensor, torch.Tensor]:
    ref, est = _batch(reference), _batch(estimate)
    if ref.shape != est.shape:
        raise AudioError(f"reference {tuple(ref.shape)} and estimate {tuple(est.shape)} differ in shape")
    return ref, est


@torch.no_grad()
def mel_distance(reference: Any, estimate: Any, sample_rate: int) -> float:
    """Multi-scale log-mel L1 distance (nats per bin) between two mono signals at ``sample_rate`` Hz."""
    ref, est = _pair(reference, estimate)
    if sample_rate not in _MEL:
        _MEL[sample_rate] = MultiScaleMelLoss(sample_rate)
    return float(_MEL[sample_rate](est, ref))


@torch.no_grad()
def stft_distance(reference: Any, estimate: Any) -> float:
    """Multi-scale spectral convergence + log-magnitude L1 distance between two mono signals."""
    ref, est = _pair(reference, estimate)
    return float(MultiScaleSTFTLoss()(est, ref))


def si_sdr(reference: Any, estimate: Any, eps: float = 1e-8) -> float:
    """Scale-invariant SDR in dB, averaged over the batch (zero-mean signals; ~ +80 dB for identical ones)."""
    ref, est = (x[:, 0].double() for x in _pair(reference, estimate))
    ref, est = ref - ref.mean(-1, keepdim=True), est - est.mean(-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * ref
    ratio = (target.pow(2).sum(-1) + eps) / ((est - target).pow(2).sum(-1) + eps)
    return float((10 * torch.log10(ratio)).mean())


def bitrate_kbps(num_codebooks: int, frame_rate: float, codebook_size: int) -> float:
    """Bitrate in kbps of K codebooks of N codes at ``frame_rate`` Hz: ``K * frame_rate * log2(N) / 1000``."""
    return num_codebooks * frame_rate * math.log2(codebook_size) / 1000.0


def plot_codebook_usage(codes: torch.Tensor, codebook_size: int, path: str | os.PathLike[str]) -> Path:
    """Bar plots (one per codebook) of code counts, most used first, to a PNG written atomically.

    ``codes``: int ``[B, K, T]``. Each panel's title gives its perplexity and dead-code share.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # not pyplot: the caller's backend (a notebook's) is left alone

    usage = codebook_usage(codes, codebook_size)
    k = codes.shape[1]
    fig = Figure(figsize=(3.2 * k, 2.8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, k, squeeze=False, sharey=True)
    for i, ax in enumerate(axes[0]):
        counts = torch.bincount(codes[:, i].reshape(-1).long(), minlength=codebook_size).sort(descending=True)
        ax.bar(np.arange(codebook_size), counts.values.numpy(), width=1.0, color="tab:blue")
        ax.set_yscale("log")
        ax.set_title(
            f"codebook {i}: ppl {usage['perplexity'][i]:.0f}/{codebook_size}, "
            f"dead {100 * usage['dead_share'][i]:.0f}%",
            fontsize=8,
        )
        ax.set_xlabel("code (by use)", fontsize=8)
    axes[0][0].set_ylabel("frames", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return Path(path)


def opus_available() -> bool:
    """Whether ``opusenc`` and ``opusdec`` are on the PATH."""
    return shutil.which("opusenc") is not None and shutil.which("opusdec") is not None


def opus_roundtrip(wav: Any, sample_rate: int, bitrate: float = 6.0) -> tuple[np.ndarray, float, float]:
    """Encode mono ``wav`` ([N] or [1, N], ``sample_rate`` Hz) with Opus at ``bitrate`` kbps and decode it.

    Returns:
        ``(decoded float32 [1, N] at sample_rate, payload kbps, file kbps)``: the payload rate
        leaves out the Ogg container (as ``opusinfo`` reports it; the file rate when opusinfo
        is missing), comparable to the codec's raw code bits; the file rate includes it.

    Raises:
        ConfigError: opus-tools missing, or opusenc/opusdec failed.
    """
    import soundfile as sf

    if not opus_available():
        raise ConfigError(OPUS_MISSING)
    x = _batch(wav)[0].numpy()
    with tempfile.TemporaryDirectory(prefix="notewave-opus-") as folder:
        src, coded, out = (Path(folder) / name for name in ("in.wav", "coded.opus", "out.wav"))
        sf.write(src, resample(x, sample_rate, OPUS_RATE).T, OPUS_RATE, subtype="FLOAT")
        for cmd in (
            ["opusenc", "--quiet", "--bitrate", f"{bitrate:g}", str(src), str(coded)],
            ["opusdec", "--quiet", "--rate", str(OPUS_RATE), str(coded), str(out)],
        ):
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                raise ConfigError(f"{cmd[0]} failed ({result.returncode}): {result.stderr.strip()[:300]}")
        file_kbps = payload = coded.stat().st_size * 8 / (x.shape[-1] / sample_rate) / 1000.0
        if shutil.which("opusinfo"):
            info = subprocess.run(["opusinfo", str(coded)], capture_output=True, text=True).stdout
            found = re.search(r"w/o overhead: ([0-9.]+) kbit/s", info)
            payload = float(found.group(1)) if found else payload
        decoded, _ = load_audio(out, sample_rate)
    decoded = decoded[:, : x.shape[-1]]
    return np.pad(decoded, ((0, 0), (0, x.shape[-1] - decoded.shape[-1]))), payload, file_kbps


def heldout_clips(
    files: Sequence[str | os.PathLike[str]], sample_rate: int, seconds: float = 5.0, per_track: int = 2
) -> tuple[torch.Tensor, list[str]]:
    """Evenly spaced clips of ``seconds`` from each file (mono, ``sample_rate`` Hz), skipping near-silence.

    Returns:
        ``(clips float32 [M, 1, seconds * sample_rate], names "file@start_s")``.
    """
    length = int(round(seconds * sample_rate))
    clips, names = [], []
    for file in files:
        wav, _ = load_audio(file, sample_rate)
        wav = np.pad(wav[0], (0, max(0, length - wav.shape[-1])))
        starts = np.linspace(0, wav.shape[-1] - length, per_track + 2)[1:-1].astype(int)
        for start in sorted(set(starts.tolist())):
            clip = wav[start : start + length]
            if np.sqrt(np.mean(clip**2)) > 1e-3:
                clips.append(torch.from_numpy(np.ascontiguousarray(clip)))
                names.append(f"{Path(file).name}@{start / sample_rate:.1f}s")
    if not clips:
        raise AudioError("no non-silent held-out clips in the given files")
    return torch.stack(clips)[:, None], names


def package_clips(
    root: str | os.PathLike[str], sample_rate: int, seconds: float = 5.0, per_track: int = 2,
    split: str = "test",
) -> tuple[torch.Tensor, list[str], list[str]]:  # fmt: skip
    """:func:`heldout_clips` of every ``root/<package>/<split>/*.flac`` (``notewave data game-music``).

    Returns:
        ``(clips float32 [M, 1, seconds * sample_rate], names, package of each clip)``, packages in
        sorted order.

    Raises:
        AudioError: no ``<package>/<split>`` folder with FLAC files under ``root``.
    """
    clips, names, groups = [], [], []
    for folder in sorted(Path(root).glob(f"*/{split}")):
        files = sorted(folder.glob("*.flac"))
        if files:
            part, part_names = heldout_clips(files, sample_rate, seconds, per_track)
            clips.append(part)
            names += part_names
            groups += [folder.parent.name] * len(part_names)
    if not clips:
        raise AudioError(f"no <package>/{split}/*.flac under {root} (run `notewave data game-music`)")
    return torch.cat(clips), names, groups


def _clip_chroma(reference: Any, estimate: Any, sample_rate: int) -> np.ndarray:
    """float64 ``[M]``: each clip's argmax-chroma cosine (nan for a silent clip)."""
    from notewave.bridge.chroma import chroma_from_audio, chroma_similarity

    x, y = _pair(reference, estimate)
    means = []
    for a, b in zip(x.numpy(), y.numpy()):
        ca, cb = (chroma_from_audio(w, sample_rate, argmax=True) for w in (a, b))
        means.append(chroma_similarity(ca, cb)[0])
    return np.asarray(means, dtype=np.float64)


def chroma_fidelity(reference: Any, estimate: Any, sample_rate: int) -> float:
    """Mean over clips of the frame-wise cosine of argmax chromagrams (see the module docstring).

    Args:
        reference, estimate: float audio ``[B, 1, N]``, ``[B, N]`` or ``[N]`` at ``sample_rate`` Hz.

    Returns:
        A float in [0, 1] (``nan`` when every clip is silent).
    """
    means = _clip_chroma(reference, estimate, sample_rate)
    return float(np.nanmean(means)) if np.isfinite(means).any() else math.nan


def _scores(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int, chroma: np.ndarray) -> dict:
    return {
        "mel": round(mel_distance(reference, estimate, sample_rate), 4),
        "stft": round(stft_distance(reference, estimate), 4),
        "si_sdr": round(si_sdr(reference, estimate), 2),
        "chroma": round(float(np.nanmean(chroma)), 3) if np.isfinite(chroma).any() else math.nan,
    }


def _add_rows(
    tables: dict[str, list], masks: dict[str, torch.Tensor], clips: torch.Tensor, audio: torch.Tensor,
    sample_rate: int, head: dict[str, Any], codes: torch.Tensor | None = None, size: int = 0,
) -> None:  # fmt: skip
    """Append one system's row (``head``, scores, codebook usage of ``codes``) to each table."""
    chroma = _clip_chroma(clips, audio, sample_rate)
    for name, mask in masks.items():
        row = {**head, **_scores(clips[mask], audio[mask], sample_rate, chroma[mask.numpy()])}
        if codes is not None:
            usage = codebook_usage(codes[mask], size)
            row.update({key: [round(v, 3) for v in vals] for key, vals in usage.items()})
        tables[name].append(row)


@torch.no_grad()
def evaluate_codec(
    codec: Codec,
    clips: torch.Tensor,
    n_q: Sequence[int] | None = None,
    opus_bitrates: Sequence[float] = (6.0,),
    plot: str | os.PathLike[str] | None = None,
    batch_size: int = 4,
    groups: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Metrics of ``codec`` with each of ``n_q`` codebooks (default: K) and of Opus at ``opus_bitrates`` kbps.

    Args:
        clips: float32 ``[M, 1, N]`` at ``codec.sample_rate`` (e.g. from :func:`heldout_clips`).
        plot: write the codebook-usage bar plot (all K codebooks) to this PNG.
        groups: a label per clip (e.g. the package of :func:`package_clips`): the same table is
            also computed over each group's clips.

    Returns:
        ``{"clips", "seconds", "rows": [{"system", "kbps", "mel", "stft", "si_sdr", ...}], "opus"}``;
        codec rows also hold ``perplexity`` and ``dead_share`` per codebook; ``opus`` is
        ``"ok"`` or why Opus was skipped. With ``groups``, also ``"groups": {label: {"clips",
        "seconds", "rows"}}`` (labels in order of first appearance).

    Raises:
        ConfigError: ``groups`` not one label per clip.
    """
    codec.eval()
    labels, rate = list(groups or []), codec.sample_rate
    if groups is not None and len(labels) != clips.shape[0]:
        raise ConfigError(f"groups has {len(labels)} labels for {clips.shape[0]} clips")
    masks = {"": torch.ones(clips.shape[0], dtype=torch.bool)}
    masks.update({g: torch.tensor([x == g for x in labels]) for g in dict.fromkeys(labels)})
    tables: dict[str, list] = {name: [] for name in masks}
    codes = torch.cat([codec.encode(c) for c in clips.split(batch_size)])
    for k in n_q or [codec.num_codebooks]:
        audio = torch.cat([codec.decode(c[:, :k]) for c in codes.split(batch_size)])[..., : clips.shape[-1]]
        head = {"system": f"notewave codec, {k} codebook{'s' * (k > 1)}", "kbps": round(codec.bitrate(k), 3)}
        _add_rows(tables, masks, clips, audio, rate, head, codes[:, :k], codec.codebook_size)
    opus = "ok" if opus_available() else OPUS_MISSING
    for kbps in opus_bitrates if opus == "ok" else ():
        runs = [opus_roundtrip(clip[0].numpy(), rate, kbps) for clip in clips]
        decoded = torch.stack([torch.from_numpy(out) for out, _, _ in runs])
        sizes = torch.tensor([run[1:] for run in runs], dtype=torch.float64)
        for name, mask in masks.items():
            payload, file_kbps = sizes[mask].mean(0).tolist()
            head = {"system": f"Opus --bitrate {kbps:g}", "kbps": round(payload, 3)}
            head["file_kbps"] = round(file_kbps, 3)
            _add_rows({name: tables[name]}, {name: mask}, clips, decoded, rate, head)
    if plot is not None:
        plot_codebook_usage(codes, codec.codebook_size, plot)
    seconds = clips.shape[-1] / rate
    summary = {
        name: {"clips": int(m.sum()), "seconds": round(int(m.sum()) * seconds, 1)}
        for name, m in masks.items()
    }
    result = {**summary[""], "rows": tables[""], "opus": opus}
    if groups is not None:
        result["groups"] = {g: {**summary[g], "rows": tables[g]} for g in tables if g}
    return result


def format_table(result: dict[str, Any]) -> str:
    """A plain-text (Markdown) table of :func:`evaluate_codec` rows."""
    lines = [
        "| system | kbps | mel dist | STFT dist | SI-SDR (dB) | chroma cosine | perplexity per codebook |",
        "|---" * 7 + "|",
    ]
    for row in result["rows"]:
        ppl = " ".join(f"{p:.0f}" for p in row.get("perplexity", [])) or "-"
        cells = [row["system"], f"{row['kbps']:.2f}", f"{row['mel']:.3f}", f"{row['stft']:.3f}"]
        cells += [f"{row['si_sdr']:.2f}", f"{row.get('chroma', math.nan):.3f}", ppl]
        lines.append("| " + " | ".join(cells) + " |")
    if result.get("opus", "ok") != "ok":
        lines.append(f"\nOpus skipped: {result['opus']}")
    return "\n".join(lines)


def format_group_table(result: dict[str, Any], metric: str = "mel") -> str:
    """A Markdown table of one ``metric`` (a row key: ``mel``, ``chroma``, ...) per system and group.

    ``result``: :func:`evaluate_codec` called with ``groups``; the last column is over all clips.
    """
    groups = result.get("groups", {})
    lines = ["| system | kbps | " + " | ".join([*groups, "all"]) + " |", "|---" * (len(groups) + 3) + "|"]
    for i, row in enumerate(result["rows"]):
        values = [g["rows"][i][metric] for g in groups.values()] + [row[metric]]
        cells = [row["system"], f"{row['kbps']:.2f}", *(f"{v:.3f}" for v in values)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
