"""The index benchmark behind `explainrec bench index`: auto-chosen index vs exact search.

Synthetic clustered unit vectors stand in for item embeddings (real ones cluster by category
and taste); queries come from the same mixture but are not in the catalogue. Everything is
measured in one run on one machine: build time, index size and peak memory, single-query
latency percentiles of the chosen index and of exact search, recall@10 against exact.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from embeddings.retrieval import FaissRetriever, IndexOptions, recall_at_k


def clustered_vectors(
    n: int, dim: int, seed: int = 0, n_clusters: int | None = None, spread: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit vectors around `n_clusters` random centres, and the centres themselves."""
    rng = np.random.default_rng(seed)
    n_clusters = n_clusters or max(8, int(math.sqrt(n)))
    centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    chunk = 200_000  # bounded temporaries at a million vectors
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        owner = rng.integers(0, n_clusters, size=m)
        x = centres[owner] + rng.normal(scale=spread / math.sqrt(dim), size=(m, dim)).astype(np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, centres


def _queries(centres: np.ndarray, count: int, seed: int, spread: float) -> np.ndarray:
    rng = np.random.default_rng(seed + 7919)
    dim = centres.shape[1]
    q = centres[rng.integers(0, len(centres), size=count)]
    q = q + rng.normal(scale=spread / math.sqrt(dim), size=q.shape).astype(np.float32)
    return np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), dtype=np.float32)


def _latencies_ms(search: Callable[[np.ndarray], Any], queries: np.ndarray) -> np.ndarray:
    search(queries[0])  # warm caches and lazy initialisation
    out = np.empty(len(queries))
    for i, q in enumerate(queries):
        t = time.perf_counter()
        search(q)
        out[i] = (time.perf_counter() - t) * 1000
    return out


def bench_index(
    n_items: int,
    dim: int = 64,
    seed: int = 0,
    n_queries: int = 1000,
    n_exact_queries: int = 200,
    k: int = 10,
    options: IndexOptions | None = None,
    spread: float = 1.0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build the automatically chosen index on `n_items` synthetic vectors and measure it.

    `spread` is the noise norm relative to the cluster centres' (1.0: clusters overlap a lot).
    """
    import faiss

    log(f"generating {n_items} clustered vectors of dim {dim}")
    vectors, centres = clustered_vectors(n_items, dim, seed, spread=spread)
    queries = _queries(centres, n_queries, seed, spread)
    tune = _queries(centres, 256, seed + 1, spread)  # tuning never sees the measured queries

    log("building the automatically chosen index")
    retriever = FaissRetriever.build(
        vectors, options=options or IndexOptions(seed=seed), tune_queries=tune, log=lambda m: log(f"  {m}")
    )
    build_seconds = retriever.info.build_seconds
    index_bytes = int(faiss.serialize_index(retriever.index).nbytes)

    exact_index = faiss.IndexFlatIP(dim)
    exact_index.add(vectors)
    exact = FaissRetriever(exact_index, vectors)
    log(f"measuring {n_queries} single queries on {retriever.description}")
    lat = _latencies_ms(lambda q: retriever.search(q, k), queries)
    log(f"measuring {n_exact_queries} single queries on exact search")
    exact_lat = _latencies_ms(lambda q: exact.search(q, k), queries[:n_exact_queries])

    found, _ = retriever.search(queries, k)
    _, truth = exact_index.search(queries, k)
    recall = recall_at_k(found, truth)
    p50, exact_p50 = float(np.percentile(lat, 50)), float(np.percentile(exact_lat, 50))
    return {
        "items": int(n_items),
        "dim": int(dim),
        "index": retriever.description,
        "build_seconds": round(build_seconds, 3),
        "p50_ms": round(p50, 4),
        "p99_ms": round(float(np.percentile(lat, 99)), 4),
        "exact_p50_ms": round(exact_p50, 4),
        "recall_at_10": round(recall, 4),
        "speedup": round(exact_p50 / max(p50, 1e-9), 2),
        # Memory, beyond the keys: the index as serialised and the process's peak RSS.
        "index_mb": round(index_bytes / 2**20, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def bench_fold_in(bundle: Any, n_calls: int = 300, seed: int = 0) -> dict[str, Any]:
    """Latency of UserEncoder.encode: fold-in with a full history and cold start from a profile."""
    from embeddings.inference import UserEncoder

    encoder = UserEncoder(bundle)
    spec = bundle.feature_spec
    rng = np.random.default_rng(seed)
    history = [spec.item_ids[i] for i in rng.choice(len(spec.item_ids), spec.max_history)]
    user_id = spec.user_ids[0] if spec.user_ids else None
    profile = bundle.users.iloc[0].to_dict() if len(bundle.users) else {}
    interests = spec.categories[:2]

    def timed(call: Callable[[], Any]) -> np.ndarray:
        call()
        out = np.empty(n_calls)
        for i in range(n_calls):
            t = time.perf_counter()
            call()
            out[i] = (time.perf_counter() - t) * 1000
        return out

    fold = timed(lambda: encoder.encode(profile, history, user_id))
    cold = timed(lambda: encoder.encode(profile, [], None, interests))
    return {
        "bundle": str(bundle.path),
        "history_length": len(history),
        "fold_in_p50_ms": round(float(np.percentile(fold, 50)), 4),
        "fold_in_p99_ms": round(float(np.percentile(fold, 99)), 4),
        "cold_start_p50_ms": round(float(np.percentile(cold, 50)), 4),
        "cold_start_p99_ms": round(float(np.percentile(cold, 99)), 4),
    }
