"""MiniLM item-text embeddings: loaded offline from the shipped wheel, cached per text set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.text import TEXT_DIM, embed_texts, texts_key


def test_embeddings_are_cached_normalised_and_meaningful(tmp_path: Path) -> None:
    texts = [
        "Toy Story, an animated film for children",
        "A cartoon movie for kids",
        "Stainless steel frying pan",
    ]
    first = embed_texts(texts, tmp_path)
    assert first.shape == (3, TEXT_DIM) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-4)
    # Related texts are closer than unrelated ones: the vectors come from the real model.
    assert first[0] @ first[1] > first[0] @ first[2]
    cached = list(tmp_path.glob("minilm-*.npy"))
    assert len(cached) == 1
    # A second call reads the cache; a tampered cache proves it is what gets returned.
    np.save(cached[0], first * 0.5, allow_pickle=False)
    assert np.allclose(embed_texts(texts, tmp_path), first * 0.5)


def test_cache_key_changes_with_any_text() -> None:
    assert texts_key(["ab", "c"]) != texts_key(["a", "bc"])
    assert texts_key(["a"]) == texts_key(["a"])
    assert embed_texts([], None).shape == (0, TEXT_DIM)
