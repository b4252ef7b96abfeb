"""The configuration of a :class:`~notewave.audio.codec.model.Codec`: sizes, rates and decoder kind.

:class:`CodecConfig` is stored in a codec checkpoint's ``config.json`` (``kind: "codec"``); its
:meth:`~CodecConfig.hash` identifies it, and :data:`CODES_FIELDS` are the fields the codes depend on.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from notewave.errors import CheckpointError, ConfigError

KIND = "codec"
DECODERS = ("seanet", "fourier")
#: the config fields of the decoder (a SEANet config leaves them out of its dict and hash)
DECODER_FIELDS = ("decoder", "decoder_dim", "decoder_layers", "istft_hop", "istft_n_fft")
#: the config fields that shape the encoder and RVQ, and so the codes (codes_hash)
CODES_FIELDS = ("sample_rate", "channels", "strides", "dim", "num_codebooks", "codebook_size", "dilations")
CODES_FIELDS += ("kernel_size",)
#: the config fields of the detail stream (detail.py; left out of the dict and hash when it has none)
DETAIL_FIELDS = ("detail_codebooks", "detail_dim", "detail_layers")


@dataclass(frozen=True)
class CodecConfig:
    """Sizes of a :class:`Codec` (defaults: 32 kHz, hop 640 samples = 50 Hz frames, 4 x 1024 codes = 2 kbps).

    ``quantizer_dropout`` trains with a random 1..K codebooks per batch so that fewer also
    decode (Zeghidour et al. 2021, SoundStream, sec. 3.3). Raises ConfigError for values out of range.
    """

    sample_rate: int = 32000  #: audio rate in Hz
    channels: int = 32  #: encoder width after the stem, doubled at every stride
    strides: tuple[int, ...] = (4, 5, 4, 8)  #: downsampling factors; product = hop length in samples
    dim: int = 128  #: latent dimension D per frame
    num_codebooks: int = 4  #: K, the RVQ codebooks
    codebook_size: int = 1024  #: N codes per codebook (log2(N) bits each)
    quantizer_dropout: bool = True
    dilations: tuple[int, ...] = (1, 3)  #: dilation of each residual unit of a stage
    kernel_size: int = 7  #: odd kernel of the first and last convolutions
    dead_code_threshold: float = 2.0  #: RVQ codes used fewer times per batch (EMA) are restarted
    ema_decay: float = 0.99  #: EMA decay of the codebooks
    decoder: str = "seanet"  #: "seanet" (layers.py) or "fourier" (fourier.py: Vocos-style, inverse STFT)
    decoder_dim: int = 256  #: fourier: width of the ConvNeXt blocks
    decoder_layers: int = 8  #: fourier: number of ConvNeXt blocks
    istft_hop: int = 320  #: fourier: STFT hop in samples (divides hop_length)
    istft_n_fft: int = 1280  #: fourier: STFT window and FFT size in samples (even)
    detail_codebooks: int = 0  #: codebooks of the detail stream (detail.py) after the K main ones; 0: none
    detail_dim: int = 32  #: detail stream: latent dimension per frame
    detail_layers: int = 3  #: detail stream: ConvNeXt blocks of its encoder

    def __post_init__(self) -> None:
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        sizes = (
            self.sample_rate,
            self.channels,
            self.dim,
            self.num_codebooks,
            *self.strides,
            *self.dilations,
        )
        if not self.strides or min(sizes) < 1 or self.codebook_size < 2 or self.kernel_size % 2 == 0:
            raise ConfigError(
                f"invalid codec config (sizes >= 1, codebook_size >= 2, odd kernel_size): {self}"
            )
        if self.decoder not in DECODERS:
            raise ConfigError(f"unknown codec decoder {self.decoder!r}; choose one of {list(DECODERS)}")
        fourier = (self.decoder_dim, self.decoder_layers, self.istft_hop, self.istft_n_fft)
        bad = min(fourier) < 1 or self.hop_length % self.istft_hop or self.istft_n_fft % 2
        if self.decoder == "fourier" and (bad or self.istft_n_fft < 2 * self.istft_hop):
            raise ConfigError(
                f"invalid fourier decoder sizes (>= 1, istft_hop dividing the hop length "
                f"{self.hop_length}, even istft_n_fft >= 2 istft_hop): {fourier}"
            )
        if self.detail_codebooks and (
            self.decoder != "fourier" or min(self.detail_dim, self.detail_layers) < 1
        ):
            raise ConfigError(
                "a detail stream (detail_codebooks > 0) needs the fourier decoder and detail_dim, "
                f"detail_layers >= 1, got {self.decoder}, {self.detail_dim}, {self.detail_layers}"
            )
        if self.detail_codebooks < 0:
            raise ConfigError(f"detail_codebooks must be >= 0, got {self.detail_codebooks}")

    @property
    def total_codebooks(self) -> int:
        """All codebooks per frame: the K main ones and the detail stream's."""
        return self.num_codebooks + self.detail_codebooks

    @property
    def hop_length(self) -> int:
        """Samples per frame: the product of the strides."""
        return math.prod(self.strides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields plus ``kind``; a SEANet decoder's config leaves out the fourier fields and a
        codec without a detail stream the detail fields (so the configs, and hashes, of codecs saved
        before they existed stay as they were)."""
        data = {
            **asdict(self),
            "strides": list(self.strides),
            "dilations": list(self.dilations),
            "kind": KIND,
        }
        data = {k: v for k, v in data.items() if self.decoder == "fourier" or k not in DECODER_FIELDS}
        return {k: v for k, v in data.items() if self.detail_codebooks or k not in DETAIL_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        """Inverse of :meth:`to_dict`, ignoring other keys; CheckpointError if ``kind`` is not ``"codec"``."""
        if data.get("kind") != KIND:
            raise CheckpointError(f"not a codec config (kind={data.get('kind')!r})")
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def hash(self) -> str:
        """16 hex digits identifying this configuration."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def codebook_count(n_q: int | None, total: int) -> int:
    """``n_q`` checked against ``total`` codebooks (None: all of them).

    Raises:
        ConfigError: ``n_q`` not an int (bools refused) in 1..``total``.
    """
    if n_q is None:
        return total
    if isinstance(n_q, bool) or not isinstance(n_q, int) or not 1 <= n_q <= total:
        raise ConfigError(f"n_q must be an int in 1..{total}, got {n_q!r}")
    return n_q
