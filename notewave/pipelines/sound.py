"""The audio LM with its codec: audio from a melody, a text, a style and an audio prompt.

:class:`SoundGenerator` assembles the building blocks of :mod:`notewave.audio`: an
:class:`~notewave.audio.lm.model.AudioLM` samples codes
(:func:`~notewave.audio.lm.generate.generate_codes`: KV cache, delay pattern, classifier-free
guidance) and the :class:`~notewave.audio.codec.model.Codec` it was trained on decodes them (and
encodes audio prompts). MusicGen's split of ``models/musicgen.py`` over ``models/lm.py`` (Copet et
al. 2023).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from notewave.audio.codec.model import Codec, encode_audio
from notewave.audio.lm.codec_link import check_codec, load_codec_for
from notewave.audio.lm.conditioning import build_conditions
from notewave.audio.lm.generate import generate_codes
from notewave.audio.lm.melody import MelodyLike, melody_chroma
from notewave.audio.lm.model import AudioLM
from notewave.core.sampling import check_sampling_args
from notewave.errors import CheckpointError, ConditioningError, ConfigError
from notewave.paths import DEFAULT_AUDIO_CHECKPOINT


class SoundGenerator:
    """An :class:`~notewave.audio.lm.model.AudioLM` and the codec whose codes it models.

    Args:
        lm: the audio LM.
        codec: its codec; checked against the identity recorded in ``lm.config.codec``.

    Raises:
        CheckpointError: another K, N or rate, or another codec (config or weights hash) than the
            one the LM was trained on.
    """

    def __init__(self, lm: AudioLM, codec: Codec):
        lm.config.codec = check_codec(lm.config, codec)
        self.lm = lm
        self.codec = codec

    sample_rate = property(lambda self: self.lm.sample_rate)
    frame_rate = property(lambda self: self.lm.frame_rate)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str] = DEFAULT_AUDIO_CHECKPOINT,
        codec: Codec | None = None,
        map_location: str = "cpu",
    ) -> SoundGenerator:
        """Load an audio LM checkpoint (default: the shipped one) with its codec.

        Args:
            path: audio LM checkpoint folder.
            codec: the codec to use; default: the first of ``path/codec``, the recorded
                ``codec.path`` and ``data/checkpoints/codec`` that exists.

        Raises:
            CheckpointError: a missing/corrupt checkpoint, no codec found, or a codec that is not the
                one the LM was trained with.
        """
        lm = AudioLM.from_pretrained(path, map_location=map_location)
        if codec is None:
            codec = load_codec_for(path, lm.config.codec)
            if codec is None:
                raise CheckpointError(
                    f"no codec found for the audio LM {path}; expected {path}/codec or data/checkpoints/codec"
                )
        return cls(lm, codec.to(map_location))

    def generate(
        self,
        melody: MelodyLike | None = None,
        text: str | None = None,
        style: str | None = None,
        seconds: float = 5.0,
        prompt_audio: object = None,
        cfg_coef: float = 3.0,
        temperature: float = 1.0,
        top_k: int | None = 250,
        top_p: float | None = None,
        seed: int = 0,
        progress: bool = True,
        keep: int | None = None,
        return_codes: bool = False,
    ) -> tuple[np.ndarray, int] | tuple[np.ndarray, int, torch.Tensor]:
        """Generate ``seconds`` of audio with the audio LM and its codec.

        Args:
            melody: melody condition: a MIDI file (``.mid``), an audio file (``.wav``, ...) or a chroma
                ``[12, frames]`` at the codec frame rate; trimmed (``UserWarning``) when longer than
                ``seconds``, followed by silence when shorter.
            text: a description (sentence embedding; the model must take text).
            style: a style tag the model knows.
            seconds: output duration in seconds, prompt included (> 0).
            prompt_audio: a file or float array ``[channels, samples]`` at the codec rate to continue;
                shorter than ``seconds``; it is kept (re-encoded) as the start of the output.
            cfg_coef: classifier-free guidance strength (1: none).
            temperature, top_k, top_p: sampling (see :func:`notewave.core.sampling.sample`).
            seed: random seed; the same seed and inputs give the same audio.
            progress: show a tqdm bar.
            keep: frames of context kept when sliding past the window (default half a window).
            return_codes: also return the codes int64 ``[1, K, T]``.

        Returns:
            ``(wav, sample_rate)``: float32 ``[1, round(seconds * sample_rate)]`` in [-1, 1] and the rate
            in Hz (plus the codes with ``return_codes``).

        Raises:
            ConditioningError: unknown style, unreadable melody, bad chroma, text model missing, or a
                prompt not shorter than ``seconds``.
            ConfigError: bad sampling arguments or duration.
            AudioError: an unreadable prompt.
        """
        model, codec = self.lm, self.codec
        if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
            raise ConfigError(f"seconds must be a positive number, got {seconds!r}")
        if not (isinstance(cfg_coef, int | float) and math.isfinite(cfg_coef)):
            raise ConfigError(f"cfg_coef must be a finite number, got {cfg_coef!r}")
        check_sampling_args(temperature, top_k, top_p)
        samples = round(seconds * model.sample_rate)
        frames = max(1, -(-samples // codec.hop_length))
        chroma = None if melody is None else melody_chroma(melody, model.sample_rate, model.frame_rate)
        conditions = build_conditions(model.config.conditions, frames, chroma, text, style)
        prompt = None
        if prompt_audio is not None:
            rate = model.sample_rate if isinstance(prompt_audio, np.ndarray) else None
            codes = encode_audio(codec, prompt_audio, sample_rate=rate, n_q=model.num_codebooks)
            prompt = model.check_codes(codes, "prompt codes")
            if prompt.shape[2] >= frames:
                raise ConditioningError(
                    f"the audio prompt ({prompt.shape[2] / model.frame_rate:.2f} s) must be shorter than the "
                    f"requested {seconds} s, which include the prompt"
                )
        generator = torch.Generator(next(model.parameters()).device).manual_seed(int(seed))
        was_training = model.training
        model.eval()
        try:
            codes = generate_codes(
                model, conditions, frames, prompt, keep=keep, progress=progress, cfg_coef=float(cfg_coef),
                temperature=temperature, top_k=top_k, top_p=top_p, generator=generator,
            )  # fmt: skip
        finally:
            model.train(was_training)
        wav = codec.decode(codes.to(next(codec.parameters()).device))[0, :, :samples]
        out = np.ascontiguousarray(wav.float().cpu().numpy(), dtype=np.float32)
        return (out, model.sample_rate, codes) if return_codes else (out, model.sample_rate)
