"""Building and tuning the FAISS index behind `FaissRetriever`.

    index, info = build_index(item_vectors, IndexOptions(), tune_queries=user_vectors)

Exact `IndexFlatIP` up to `flat_threshold` items, IVF above (HNSW on request). The search
width (nprobe / efSearch) is tuned per fetch depth against exact search, so recall@10 stays
at the target for plain top-k and for the deeper fetches of filtered queries.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from explainrec.errors import ConfigError


@dataclass
class IndexOptions:
    """How `build_index` picks and tunes the index for a catalogue."""

    kind: Literal["auto", "flat", "ivf", "hnsw"] = "auto"
    flat_threshold: int = 50_000  # auto: exact IndexFlatIP up to this many items, IVF above
    target_recall: float = 0.98  # recall@10 vs exact that nprobe/efSearch are tuned to reach
    recall_margin: float = 0.01  # tune to target + margin, so unseen queries stay above target
    nlist: int | None = None  # IVF lists; default ~ 2*sqrt(n)
    hnsw_m: int = 32
    ef_construction: int = 80
    tune_queries: int = 256
    use_gpu: bool | None = None  # None: use a GPU when faiss sees one
    seed: int = 0


@dataclass
class IndexInfo:
    """What was built, for the manifest and the benchmark."""

    kind: str
    params: dict[str, int] = field(default_factory=dict)
    tuned_recall_at_10: float | None = None
    build_seconds: float = 0.0
    # fetch depth -> search width (nprobe / efSearch) tuned for that many neighbours
    depth_params: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.depth_params = {int(k): int(v) for k, v in self.depth_params.items()}  # JSON keys are strings

    def width_for(self, fetch: int) -> int | None:
        """Search width for `fetch` neighbours: the tuned one of the next deeper depth."""
        if not self.depth_params:
            return None
        deeper = [d for d in sorted(self.depth_params) if d >= fetch]
        if deeper:
            return self.depth_params[deeper[0]]
        deepest = max(self.depth_params)
        # Beyond the deepest tuned depth widen in proportion; the caller caps it.
        return self.depth_params[deepest] * math.ceil(fetch / deepest)

    @property
    def description(self) -> str:
        inner = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.kind}({inner})" if inner else self.kind

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "description": self.description}


# Fetch depths tuned at build time: top-10, and the deeper fetches of filtered/excluding queries.
TUNED_DEPTHS = (10, 40, 160, 640)


def choose_kind(n_items: int, options: IndexOptions) -> str:
    if options.kind != "auto":
        return options.kind
    return "flat" if n_items <= options.flat_threshold else "ivf"


def build_index(
    vectors: np.ndarray,
    options: IndexOptions | None = None,
    tune_queries: np.ndarray | None = None,
    log: Any = None,
) -> tuple[Any, IndexInfo]:
    """Build the inner-product index for `vectors` and tune its search width to the recall target.

    `tune_queries` should look like real queries (user vectors); by default they are item
    vectors with noise. `log` is a callable taking a message (progress for long builds).
    """
    import faiss

    opts = options or IndexOptions()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    kind = choose_kind(n, opts)
    say = log or (lambda _msg: None)
    started = time.perf_counter()
    index: Any
    params: dict[str, int] = {}
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        index.add(x)
    elif kind == "ivf":
        nlist = opts.nlist or max(1, min(n // 39, int(2 * math.sqrt(n))))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(opts.seed)
        train = x[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
        say(f"training IVF with {nlist} lists on {len(train)} vectors")
        index.cp.seed = opts.seed
        index.train(train)
        say(f"adding {n} vectors")
        index.add(x)
        params = {"nlist": nlist, "nprobe": 1}
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, opts.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = opts.ef_construction
        say(f"building HNSW (M={opts.hnsw_m}) over {n} vectors")
        index.add(x)
        params = {"M": opts.hnsw_m, "efSearch": 16}
    else:
        raise ConfigError(f"unknown index kind {kind!r}; expected auto, flat, ivf or hnsw")
    info = IndexInfo(kind=kind, params=params)
    if kind != "flat":
        queries = (
            tune_queries if tune_queries is not None else _noisy_queries(x, opts.tune_queries, opts.seed)
        )
        _tune(
            index,
            info,
            x,
            np.ascontiguousarray(queries[: opts.tune_queries], dtype=np.float32),
            min(1.0, opts.target_recall + opts.recall_margin),
            say,
        )
    info.build_seconds = time.perf_counter() - started
    return index, info


def _noisy_queries(x: np.ndarray, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    picks = x[rng.choice(len(x), size=min(count, len(x)), replace=False)]
    # Noise half the vectors' norm: queries sit between items, like user vectors do.
    noisy = picks + rng.normal(scale=0.5 / math.sqrt(x.shape[1]), size=picks.shape).astype(np.float32)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True).clip(min=1e-12)


def _tune(index: Any, info: IndexInfo, x: np.ndarray, queries: np.ndarray, goal: float, say: Any) -> None:
    """Find, per fetch depth, the smallest nprobe / efSearch whose recall against exact reaches `goal`.

    Filtered and seen-excluding queries fetch deeper than 10, and the tail of a deeper answer
    needs a wider search than its head, so each depth in TUNED_DEPTHS gets its own width.
    """
    import faiss

    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    depths = [d for d in TUNED_DEPTHS if d <= len(x)] or [len(x)]
    _, truth_all = exact.search(queries, depths[-1])
    knob = "nprobe" if info.kind == "ivf" else "efSearch"
    limit = index.nlist if info.kind == "ivf" else 4096
    value = 1 if info.kind == "ivf" else 16
    for depth in depths:
        value = max(value, depth) if info.kind == "hnsw" else value
        while True:
            _, found = index.search(queries, depth, params=search_params(info.kind, value))
            recall = recall_at_k(found, truth_all[:, :depth])
            say(f"depth {depth}: {knob}={value} recall={recall:.4f}")
            if recall >= goal or value >= limit:
                break
            value = min(limit, value * 2)
        info.depth_params[depth] = value
        if depth == depths[0]:
            info.params[knob] = value
            info.tuned_recall_at_10 = recall
    set_knob(index, info.kind, info.params[knob])


def search_params(kind: str, value: int) -> Any:
    import faiss as faiss_module

    faiss: Any = faiss_module  # the SWIG stubs miss the per-call search parameter classes
    if kind == "ivf":
        return faiss.SearchParametersIVF(nprobe=value)
    if kind == "hnsw":
        return faiss.SearchParametersHNSW(efSearch=value)
    return None


def set_knob(index: Any, kind: str, value: int) -> None:
    if kind == "ivf":
        index.nprobe = value
    elif kind == "hnsw":
        index.hnsw.efSearch = value


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of `truth` that appears in the same row of `found`."""
    hits = sum(len(set(f.tolist()) & set(t.tolist()) - {-1}) for f, t in zip(found, truth, strict=True))
    denom = sum(int((t >= 0).sum()) for t in truth)
    return hits / max(1, denom)


def describe_index(index: Any) -> IndexInfo:
    """Recover kind and search parameters from a loaded faiss index."""
    import faiss

    if isinstance(index, faiss.IndexIVF):
        return IndexInfo("ivf", {"nlist": int(index.nlist), "nprobe": int(index.nprobe)})
    if isinstance(index, faiss.IndexHNSW):
        hnsw: Any = index.hnsw
        return IndexInfo("hnsw", {"M": int(hnsw.nb_neighbors(1)), "efSearch": int(hnsw.efSearch)})
    return IndexInfo("flat")


def maybe_to_gpu(index: Any, use_gpu: bool | None) -> Any:
    """A GPU copy of `index` when faiss was built with CUDA and a device is visible."""
    import faiss

    if use_gpu is False:
        return index
    n_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if n_gpus == 0:
        if use_gpu:
            raise ConfigError("use_gpu is set but faiss sees no GPU (install faiss-gpu; see docs/gpu.md)")
        return index
    return faiss.index_cpu_to_all_gpus(index)
