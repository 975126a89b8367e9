"""Customer segments: clusters of user embeddings, their readable profiles and a 2-D map.

    segmenter = Segmenter(method="kmeans", k_range=(2, 10)).fit(user_vectors)
    labels = segmenter.assign(new_vectors)                  # nearest centroid
    model = segment_users(user_vectors, users, items, history)   # what a bundle stores

K is chosen by the silhouette over `k_range`; inertia (for an elbow plot) and Davies-Bouldin
are reported for every k. Ward clustering runs on a sample (it is quadratic) and assigns the
rest to the nearest centroid, so both methods serve new users the same way. RFM segmentation
(K-Means on standardised log recency/frequency/monetary, the seeds' method) is kept for
comparison. scikit-learn/scipy are imported only when fitting; assigning needs numpy alone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from explainrec.errors import BundleError, ConfigError, DataError

Method = Literal["kmeans", "ward"]
AGE_BANDS = (
    (0, 18, "<18"),
    (18, 25, "18-24"),
    (25, 35, "25-34"),
    (35, 45, "35-44"),
    (45, 55, "45-54"),
    (55, 200, "55+"),
)


@dataclass
class KScore:
    method: str
    k: int
    silhouette: float
    inertia: float
    davies_bouldin: float


@dataclass
class Segmenter:
    method: Method = "kmeans"
    k_range: tuple[int, int] = (2, 10)
    seed: int = 0
    max_fit_points: int = 20_000  # K-Means fits on at most this many users, Ward on max_ward_points
    max_ward_points: int = 3_000
    silhouette_sample: int = 3_000
    # Set by fit():
    k: int = 0
    centroids: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.float32))
    labels_: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    scores: list[KScore] = field(default_factory=list)
    profiles: list[SegmentProfile] = field(default_factory=list)

    def fit(self, vectors: np.ndarray) -> Segmenter:
        x = _check_vectors(vectors)
        if self.method not in ("kmeans", "ward"):
            raise ConfigError(f"unknown segmentation method {self.method!r}; expected kmeans or ward")
        lo, hi = self.k_range
        rng = np.random.default_rng(self.seed)
        cap = self.max_ward_points if self.method == "ward" else self.max_fit_points
        fit_rows = (
            rng.choice(len(x), size=min(len(x), cap), replace=False) if len(x) > cap else np.arange(len(x))
        )
        sample = x[fit_rows]
        hi = min(hi, len(sample) - 1)
        if hi < 2 or lo > hi:
            raise DataError(f"cannot segment {len(x)} users into k in {self.k_range}: need more users")
        best: tuple[float, int, np.ndarray] | None = None
        self.scores = []
        for k, labels in _candidate_labelings(self.method, sample, range(max(2, lo), hi + 1), self.seed):
            centroids = _centroids(sample, labels, k)
            score = _score(self.method, sample, labels, centroids, self.silhouette_sample, self.seed)
            self.scores.append(score)
            if best is None or score.silhouette > best[0]:
                best = (score.silhouette, k, centroids)
        assert best is not None
        _, self.k, self.centroids = best
        self.labels_ = self.assign(x)
        return self

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        return assign_nearest(self.centroids, vectors)

    def describe(
        self,
        user_ids: Sequence[str],
        users: pd.DataFrame,
        items: pd.DataFrame,
        history: pd.DataFrame,
        rfm: pd.DataFrame | None = None,
    ) -> list[SegmentProfile]:
        self.profiles = build_profiles(self.labels_, self.k, user_ids, users, items, history, rfm)
        return self.profiles


def _check_vectors(vectors: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0 or not np.isfinite(x).all():
        raise DataError(f"segmentation needs a finite, non-empty [n, d] matrix, got shape {x.shape}")
    return x


def assign_nearest(centroids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (Euclidean) for each row of `vectors` ([d] or [n, d])."""
    x = np.asarray(vectors, dtype=np.float32)
    single = x.ndim == 1
    x2 = x[None, :] if single else x
    if x2.ndim != 2 or x2.shape[1] != centroids.shape[1]:
        raise DataError(f"vectors must have {centroids.shape[1]} columns, got shape {x.shape}")
    d2 = (x2**2).sum(1, keepdims=True) - 2 * x2 @ centroids.T + (centroids**2).sum(1)[None, :]
    labels = d2.argmin(axis=1).astype(np.int64)
    return labels[0:1] if single else labels


def _candidate_labelings(method: str, x: np.ndarray, ks: range, seed: int) -> Any:
    if method == "kmeans":
        from sklearn.cluster import KMeans

        for k in ks:
            yield k, KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    else:
        from scipy.cluster.hierarchy import fcluster, linkage

        # One Ward tree, cut at every k.
        tree = linkage(x.astype(np.float64), method="ward")
        for k in ks:
            yield k, fcluster(tree, t=k, criterion="maxclust") - 1


def _centroids(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((k, x.shape[1]), dtype=np.float32)
    for c in range(k):
        members = x[labels == c]
        if len(members):
            out[c] = members.mean(axis=0)
    return out


def _score(
    method: str, x: np.ndarray, labels: np.ndarray, centroids: np.ndarray, sample: int, seed: int
) -> KScore:
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    k = len(centroids)
    inertia = float(((x - centroids[labels]) ** 2).sum())
    if len(np.unique(labels)) < 2:
        return KScore(method, k, -1.0, inertia, float("inf"))
    sil = float(silhouette_score(x, labels, sample_size=min(sample, len(x)), random_state=seed))
    return KScore(method, k, sil, inertia, float(davies_bouldin_score(x, labels)))


# --------------------------------------------------------------------------------------------
# Profiles


@dataclass
class SegmentProfile:
    segment: int
    name: str
    size: int
    share: float
    top_categories: list[dict[str, Any]]  # {"category", "share", "lift"}
    top_items: list[dict[str, Any]]  # {"item_id", "title", "count"}
    age_mix: dict[str, float]
    mean_age: float | None
    gender_mix: dict[str, float]
    rfm: dict[str, float]  # medians of recency_days, frequency, monetary


def build_profiles(
    labels: np.ndarray,
    k: int,
    user_ids: Sequence[str],
    users: pd.DataFrame,
    items: pd.DataFrame,
    history: pd.DataFrame,
    rfm: pd.DataFrame | None = None,
) -> list[SegmentProfile]:
    """Describe each segment by who is in it and what they interact with."""
    segment_of = pd.Series(np.asarray(labels), index=pd.Index([str(u) for u in user_ids]))
    users_by_id = users.assign(user_id=users["user_id"].astype(str)).set_index("user_id")
    item_cats = {str(i): _as_list(c) for i, c in zip(items["item_id"], items["categories"], strict=True)}
    titles = {str(i): str(t) for i, t in zip(items["item_id"], items["title"], strict=True)}
    hist = history.assign(user_id=history["user_id"].astype(str), item_id=history["item_id"].astype(str))
    hist = hist.assign(segment=hist["user_id"].map(segment_of))
    overall_cats = _category_shares(hist["item_id"], item_cats)
    rfm_frame = rfm if rfm is not None else rfm_from_history(history, items)
    rfm_frame = rfm_frame.set_axis(rfm_frame.index.astype(str))
    total = len(segment_of)
    profiles = []
    for c in range(k):
        members = segment_of.index[segment_of.to_numpy() == c]
        seg_hist = hist[hist["segment"] == c]
        cats = _category_shares(seg_hist["item_id"], item_cats)
        ranked = sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        top_cats: list[dict[str, Any]] = [
            {
                "category": name,
                "share": round(share, 4),
                "lift": round(share / overall_cats[name], 3) if overall_cats.get(name) else 0.0,
            }
            for name, share in ranked
        ]
        counts = Counter(seg_hist["item_id"]).most_common(5)
        top_items = [{"item_id": i, "title": titles.get(i, i), "count": int(n)} for i, n in counts]
        member_rows = users_by_id.reindex(members)
        age_mix, mean_age = _age_mix(member_rows)
        gender_mix = _shares(member_rows["gender"]) if "gender" in member_rows else {}
        seg_rfm = rfm_frame.reindex(members)
        rfm_stats = {
            col: round(float(seg_rfm[col].median()), 3)
            for col in ("recency_days", "frequency", "monetary")
            if col in seg_rfm and seg_rfm[col].notna().any()
        }
        profiles.append(
            SegmentProfile(
                segment=c,
                name="",
                size=len(members),
                share=round(len(members) / max(1, total), 4),
                top_categories=top_cats,
                top_items=top_items,
                age_mix=age_mix,
                mean_age=mean_age,
                gender_mix=gender_mix,
                rfm=rfm_stats,
            )
        )
    _name_segments(profiles)
    return profiles


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _category_shares(item_ids: pd.Series, item_cats: dict[str, list[str]]) -> dict[str, float]:
    counter: Counter[str] = Counter()
    for item in item_ids:
        counter.update(item_cats.get(item, []))
    total = sum(counter.values())
    return {name: n / total for name, n in counter.items()} if total else {}


def _shares(values: pd.Series) -> dict[str, float]:
    clean = values.dropna().astype(str)
    if clean.empty:
        return {}
    return {str(k): round(float(v), 4) for k, v in clean.value_counts(normalize=True).items()}


def _age_mix(rows: pd.DataFrame) -> tuple[dict[str, float], float | None]:
    if "age" not in rows:
        return {}, None
    ages = pd.to_numeric(rows["age"], errors="coerce").dropna()
    if ages.empty:
        return {}, None
    mix = {label: round(float(((ages >= lo) & (ages < hi)).mean()), 4) for lo, hi, label in AGE_BANDS}
    return {k: v for k, v in mix.items() if v > 0}, round(float(ages.mean()), 1)


def _name_segments(profiles: list[SegmentProfile]) -> None:
    """Short names from the most over-represented categories, the main age band and gender skew."""
    for p in profiles:
        liked = sorted(
            (c for c in p.top_categories if c["share"] >= 0.05), key=lambda c: (-c["lift"], -c["share"])
        )[:2]
        parts = [" + ".join(c["category"] for c in liked) or "Mixed tastes"]
        if p.age_mix:
            band, share = max(p.age_mix.items(), key=lambda kv: kv[1])
            if share >= 0.4:
                parts.append(band)
        if p.gender_mix:
            gender, share = max(p.gender_mix.items(), key=lambda kv: kv[1])
            if share >= 0.65 and len(p.gender_mix) > 1:
                parts.append(f"mostly {gender}")
        p.name = ", ".join(parts)
    seen: Counter[str] = Counter(p.name for p in profiles)
    for p in profiles:
        if seen[p.name] > 1:
            p.name = f"{p.name} #{p.segment + 1}"


# --------------------------------------------------------------------------------------------
# RFM


def rfm_from_history(history: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Recency (days before the last event), frequency (events) and monetary (sum of prices).

    A fallback for bundles written without the data layer's RFM table.
    """
    if history.empty:
        return pd.DataFrame(columns=["recency_days", "frequency", "monetary"], dtype=float)
    hist = history.assign(user_id=history["user_id"].astype(str), item_id=history["item_id"].astype(str))
    ts = pd.to_datetime(hist["timestamp"], utc=True)
    grouped = hist.assign(ts=ts).groupby("user_id")
    out = pd.DataFrame(
        {
            "recency_days": (ts.max() - grouped["ts"].max()).dt.total_seconds() / 86400.0,
            "frequency": grouped.size().astype(float),
        }
    )
    if "price" in items.columns:
        price = pd.Series(
            pd.to_numeric(items["price"], errors="coerce").to_numpy(), index=items["item_id"].astype(str)
        )
        out["monetary"] = hist.assign(p=hist["item_id"].map(price)).groupby("user_id")["p"].sum(min_count=1)
    else:
        out["monetary"] = np.nan
    return out


@dataclass
class RfmSegmentation:
    k: int
    labels: pd.Series  # segment per user_id
    scores: list[KScore]


def segment_rfm(rfm: pd.DataFrame, k_range: tuple[int, int] = (2, 8), seed: int = 0) -> RfmSegmentation:
    """K-Means on standardised log1p(recency, frequency, monetary), k by silhouette."""
    cols = [c for c in ("recency_days", "frequency", "monetary") if c in rfm and rfm[c].notna().any()]
    if not cols:
        raise DataError("RFM table needs recency_days, frequency and/or monetary columns")
    x = np.log1p(rfm[cols].astype(float).fillna(0.0).clip(lower=0.0).to_numpy())
    x = (x - x.mean(0)) / x.std(0).clip(min=1e-9)
    seg = Segmenter(method="kmeans", k_range=k_range, seed=seed).fit(x)
    return RfmSegmentation(seg.k, pd.Series(seg.labels_, index=rfm.index), seg.scores)


def agreement(labels_a: np.ndarray, labels_b: np.ndarray) -> dict[str, float]:
    """Adjusted Rand index and normalised mutual information between two labelings."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "ari": round(float(adjusted_rand_score(labels_a, labels_b)), 4),
        "nmi": round(float(normalized_mutual_info_score(labels_a, labels_b)), 4),
    }


# --------------------------------------------------------------------------------------------
# What a bundle stores


@dataclass
class SegmentModel:
    method: str
    k: int
    centroids: np.ndarray  # [k, d]
    labels: np.ndarray  # [n_users], aligned with the bundle's users
    scores: list[KScore]
    profiles: list[SegmentProfile]
    pca_mean: np.ndarray  # [d]
    pca_components: np.ndarray  # [2, d]
    sample_users: np.ndarray  # [s] user rows plotted on the dashboard
    user_xy: np.ndarray  # [s, 2]
    centroid_xy: np.ndarray  # [k, 2]
    rfm_comparison: dict[str, float] = field(default_factory=dict)

    FILES: ClassVar[tuple[str, ...]] = (
        "segments.json",
        "segment_centroids.npy",
        "segment_labels.npy",
        "segment_pca_mean.npy",
        "segment_pca_components.npy",
        "segment_sample_users.npy",
        "segment_user_xy.npy",
        "segment_centroid_xy.npy",
    )

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        return assign_nearest(self.centroids, vectors)

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """PCA 2-D coordinates of `vectors` in the dashboard's space."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        return (x - self.pca_mean) @ self.pca_components.T

    def summary(self) -> dict[str, Any]:
        chosen = next((s for s in self.scores if s.method == self.method and s.k == self.k), None)
        return {
            "method": self.method,
            "k": self.k,
            "silhouette": chosen.silhouette if chosen else None,
            "sizes": [p.size for p in self.profiles],
            "names": [p.name for p in self.profiles],
            "rfm_comparison": self.rfm_comparison,
        }

    def save(self, directory: Path) -> list[str]:
        meta = {
            "method": self.method,
            "k": self.k,
            "scores": [asdict(s) for s in self.scores],
            "profiles": [asdict(p) for p in self.profiles],
            "rfm_comparison": self.rfm_comparison,
        }
        (directory / "segments.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), "utf-8")
        arrays = {
            "segment_centroids.npy": self.centroids,
            "segment_labels.npy": self.labels,
            "segment_pca_mean.npy": self.pca_mean,
            "segment_pca_components.npy": self.pca_components,
            "segment_sample_users.npy": self.sample_users,
            "segment_user_xy.npy": self.user_xy,
            "segment_centroid_xy.npy": self.centroid_xy,
        }
        for name, arr in arrays.items():
            np.save(directory / name, np.ascontiguousarray(arr), allow_pickle=False)
        return list(self.FILES)

    @classmethod
    def load(cls, directory: Path) -> SegmentModel:
        try:
            meta = json.loads((directory / "segments.json").read_text("utf-8"))
            arr = {n: np.load(directory / n, allow_pickle=False) for n in cls.FILES if n.endswith(".npy")}
            return cls(
                method=meta["method"],
                k=int(meta["k"]),
                centroids=arr["segment_centroids.npy"],
                labels=arr["segment_labels.npy"],
                scores=[KScore(**s) for s in meta["scores"]],
                profiles=[SegmentProfile(**p) for p in meta["profiles"]],
                pca_mean=arr["segment_pca_mean.npy"],
                pca_components=arr["segment_pca_components.npy"],
                sample_users=arr["segment_sample_users.npy"],
                user_xy=arr["segment_user_xy.npy"],
                centroid_xy=arr["segment_centroid_xy.npy"],
                rfm_comparison=meta.get("rfm_comparison", {}),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"segments in {directory} are unreadable: {exc}") from exc


@dataclass
class SegmentOptions:
    method: Literal["auto", "kmeans", "ward"] = "auto"  # auto: the better silhouette of both
    k_range: tuple[int, int] = (2, 10)
    plot_sample: int = 2_000
    seed: int = 0


def segment_users(
    user_vectors: np.ndarray,
    user_ids: Sequence[str],
    users: pd.DataFrame,
    items: pd.DataFrame,
    history: pd.DataFrame,
    rfm: pd.DataFrame | None = None,
    options: SegmentOptions | None = None,
) -> SegmentModel:
    """Fit segments on user vectors, profile them, compare with RFM and lay out a PCA map."""
    opts = options or SegmentOptions()
    x = _check_vectors(user_vectors)
    methods: list[Method] = ["kmeans", "ward"] if opts.method == "auto" else [opts.method]
    fitted = [Segmenter(method=m, k_range=opts.k_range, seed=opts.seed).fit(x) for m in methods]
    best = max(fitted, key=lambda s: next(sc.silhouette for sc in s.scores if sc.k == s.k))
    rfm_frame = rfm if rfm is not None else rfm_from_history(history, items)
    profiles = best.describe(user_ids, users, items, history, rfm_frame)
    comparison: dict[str, float] = {}
    aligned = rfm_frame.set_axis(rfm_frame.index.astype(str)).reindex([str(u) for u in user_ids])
    if aligned.notna().any(axis=1).sum() >= 10:
        present = aligned.notna().any(axis=1).to_numpy()
        rfm_seg = segment_rfm(aligned[present], k_range=(2, min(8, int(present.sum()) - 1)), seed=opts.seed)
        comparison = {
            "rfm_k": float(rfm_seg.k),
            **agreement(best.labels_[present], rfm_seg.labels.to_numpy()),
        }
    mean, components = _pca_2d(x, opts.seed)
    rng = np.random.default_rng(opts.seed)
    sample = np.sort(rng.choice(len(x), size=min(len(x), opts.plot_sample), replace=False))
    return SegmentModel(
        method=best.method,
        k=best.k,
        centroids=best.centroids,
        labels=best.labels_,
        scores=[s for f in fitted for s in f.scores],
        profiles=profiles,
        pca_mean=mean,
        pca_components=components,
        sample_users=sample.astype(np.int64),
        user_xy=((x[sample] - mean) @ components.T).astype(np.float32),
        centroid_xy=((best.centroids - mean) @ components.T).astype(np.float32),
        rfm_comparison=comparison,
    )


def _pca_2d(x: np.ndarray, seed: int, max_points: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    fit = x[rng.choice(len(x), size=max_points, replace=False)] if len(x) > max_points else x
    mean = fit.mean(axis=0)
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    components = np.zeros((2, x.shape[1]), dtype=np.float32)
    components[: min(2, len(vt))] = vt[:2]
    # Fix each axis' sign so the same data always gives the same picture.
    for i in range(2):
        j = int(np.abs(components[i]).argmax())
        if components[i, j] < 0:
            components[i] *= -1
    return mean.astype(np.float32), components
