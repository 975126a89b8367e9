"""The serving bundle: everything the service needs from a trained model, nothing of training.

    path = write_bundle(BundleContents(...), Path("artifacts/bundles"))   # -> bundles/<version>/
    bundle = Bundle.load(Path("artifacts/bundles"))                       # follows LATEST
    ids, scores = bundle.retriever.search(bundle.user_vectors[0], k=10)

A bundle directory is written once, into a temporary sibling that is renamed into place, and
never changed after; `LATEST` (a one-line file naming the version) is replaced atomically.
`manifest.json` records the sha256 and size of every file and `load` refuses a bundle whose
files do not match. No pickle anywhere: arrays are .npy (loaded with allow_pickle=False),
tables Parquet, weights safetensors, configs JSON, the index faiss's own format.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from embeddings.features import FeatureSpec
from embeddings.retrieval import (
    ExactRetriever,
    FaissRetriever,
    IndexInfo,
    IndexOptions,
    ItemCatalog,
    build_index,
)
from embeddings.segments import SegmentModel, SegmentOptions, segment_users
from embeddings.towers import ItemFeatures, TwoTowerConfig, TwoTowerModel
from explainrec.errors import BundleError

BUNDLE_SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
LATEST = "LATEST"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# Fixed file names (segments add theirs, see SegmentModel.FILES).
CONFIG_FILE = "config.json"
MODEL_CONFIG_FILE = "model_config.json"
MODEL_STATE_FILE = "model.safetensors"
FEATURE_SPEC_FILE = "feature_spec.json"
ITEM_VECTORS_FILE = "item_vectors.npy"
USER_VECTORS_FILE = "user_vectors.npy"
ITEMS_FILE = "items.parquet"
USERS_FILE = "users.parquet"
HISTORY_FILE = "history.parquet"
INDEX_FILE = "index.faiss"
REQUIRED_FILES = (
    CONFIG_FILE,
    MODEL_CONFIG_FILE,
    MODEL_STATE_FILE,
    FEATURE_SPEC_FILE,
    ITEM_VECTORS_FILE,
    USER_VECTORS_FILE,
    ITEMS_FILE,
    USERS_FILE,
    HISTORY_FILE,
    INDEX_FILE,
    *SegmentModel.FILES,
)
HISTORY_COLUMNS = ("user_id", "item_id", "timestamp", "weight")


@dataclass
class BundleContents:
    """What training hands over; `write_bundle` adds the index, segments and manifest."""

    config: dict[str, Any]  # the training config, JSON-able
    model_config: TwoTowerConfig
    model_state: dict[str, torch.Tensor]
    feature_spec: FeatureSpec
    item_vectors: np.ndarray  # [n_items, d] float32, row i = feature_spec.item_ids[i]
    user_vectors: np.ndarray  # [n_users, d] float32, row i = feature_spec.user_ids[i]
    items: pd.DataFrame  # canonical items, rows aligned with feature_spec.item_ids
    users: pd.DataFrame  # canonical users, rows aligned with feature_spec.user_ids
    history: pd.DataFrame  # training positives: user_id, item_id, timestamp, weight
    metrics: dict[str, float]
    dataset_name: str
    # Optional: the data layer's RFM table (index user_id; recency_days, frequency, monetary).
    # Without it segment profiles use an RFM computed from `history` and item prices.
    rfm: pd.DataFrame | None = None

    def validate(self) -> None:
        """Raise BundleError when the parts disagree about sizes or ids."""
        spec = self.feature_spec
        n_items, n_users = len(spec.item_ids), len(spec.user_ids)
        iv, uv = self.item_vectors, self.user_vectors
        if iv.ndim != 2 or iv.shape[0] != n_items or iv.shape[0] == 0:
            raise BundleError(
                f"item_vectors has shape {iv.shape}; expected [{n_items}, d] (feature_spec.item_ids)"
            )
        if uv.ndim != 2 or uv.shape[0] != n_users or uv.shape[1] != iv.shape[1]:
            raise BundleError(f"user_vectors has shape {uv.shape}; expected [{n_users}, {iv.shape[1]}]")
        if not (np.isfinite(iv).all() and np.isfinite(uv).all()):
            raise BundleError("item_vectors or user_vectors contain NaN or infinite values")
        mc = self.model_config
        if (mc.n_items, mc.n_users, mc.dim) != (n_items, n_users, iv.shape[1]):
            raise BundleError(
                f"model_config says n_items={mc.n_items}, n_users={mc.n_users}, dim={mc.dim}; "
                f"the feature spec and vectors say {n_items}, {n_users}, {iv.shape[1]}"
            )
        _check_aligned(self.items, "item_id", spec.item_ids, "items")
        _check_aligned(self.users, "user_id", spec.user_ids, "users")
        missing = [c for c in HISTORY_COLUMNS if c not in self.history.columns]
        if missing:
            raise BundleError(f"history lacks columns {missing}; expected {list(HISTORY_COLUMNS)}")
        unknown_items = set(self.history["item_id"].astype(str)) - set(spec.item_ids)
        if unknown_items:
            raise BundleError(
                f"history names items missing from the feature spec: {sorted(unknown_items)[:5]}"
            )
        try:
            json.dumps(self.config)
        except (TypeError, ValueError) as exc:
            raise BundleError(f"config is not JSON-serialisable: {exc}") from exc


def _check_aligned(frame: pd.DataFrame, column: str, ids: list[str], name: str) -> None:
    if column not in frame.columns:
        raise BundleError(f"{name} table has no {column!r} column")
    got = frame[column].astype(str).tolist()
    if got != ids:
        first = next(
            (i for i, (a, b) in enumerate(zip(got, ids, strict=False)) if a != b), min(len(got), len(ids))
        )
        raise BundleError(
            f"{name} rows are not aligned with the feature spec ({len(got)} rows vs {len(ids)} ids; "
            f"first difference at row {first})"
        )


# --------------------------------------------------------------------------------------------
# Writing


def write_bundle(
    contents: BundleContents,
    bundles_root: Path,
    version: str | None = None,
    *,
    index_options: IndexOptions | None = None,
    segment_options: SegmentOptions | None = None,
    log: Any = print,
) -> Path:
    """Write `<bundles_root>/<version>/` atomically and point `<bundles_root>/LATEST` at it."""
    contents.validate()
    bundles_root = Path(bundles_root)
    bundles_root.mkdir(parents=True, exist_ok=True)
    version = version or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
    if not _VERSION_RE.match(version):
        raise BundleError(f"bad bundle version {version!r}: use letters, digits, '.', '_' and '-'")
    final = bundles_root / version
    if final.exists():
        raise BundleError(f"bundle {final} already exists; bundles are never overwritten")
    say = log or (lambda _msg: None)
    tmp = bundles_root / f".tmp-{version}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        manifest = _write_files(contents, tmp, version, index_options, segment_options, say)
        _write_json(tmp / MANIFEST, manifest)
        for path in tmp.iterdir():
            path.chmod(0o444)  # written once: make accidental edits fail loudly
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(bundles_root)
    point_latest(bundles_root, version)
    say(f"bundle written: {final}")
    return final


def point_latest(bundles_root: Path, version: str) -> None:
    """Atomically make `<bundles_root>/LATEST` name `version` (which must exist)."""
    if not (bundles_root / version / MANIFEST).is_file():
        raise BundleError(f"cannot point LATEST at {version!r}: {bundles_root / version} is not a bundle")
    tmp = bundles_root / f".LATEST.tmp-{secrets.token_hex(4)}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, bundles_root / LATEST)
    _fsync_dir(bundles_root)


def _write_files(
    contents: BundleContents,
    out: Path,
    version: str,
    index_options: IndexOptions | None,
    segment_options: SegmentOptions | None,
    say: Any,
) -> dict[str, Any]:
    from safetensors.torch import save_file

    spec = contents.feature_spec
    item_vectors = np.ascontiguousarray(contents.item_vectors, dtype=np.float32)
    user_vectors = np.ascontiguousarray(contents.user_vectors, dtype=np.float32)
    _write_json(out / CONFIG_FILE, contents.config)
    _write_json(out / MODEL_CONFIG_FILE, contents.model_config.to_dict())
    (out / FEATURE_SPEC_FILE).write_text(spec.to_json(), "utf-8")
    # safetensors refuses shared storage; clones make every tensor own its memory.
    save_file(
        {k: v.detach().cpu().contiguous().clone() for k, v in contents.model_state.items()},
        str(out / MODEL_STATE_FILE),
    )
    np.save(out / ITEM_VECTORS_FILE, item_vectors, allow_pickle=False)
    np.save(out / USER_VECTORS_FILE, user_vectors, allow_pickle=False)
    history = contents.history.loc[:, list(HISTORY_COLUMNS)].assign(
        user_id=lambda f: f["user_id"].astype(str), item_id=lambda f: f["item_id"].astype(str)
    )
    for name, frame in ((ITEMS_FILE, contents.items), (USERS_FILE, contents.users), (HISTORY_FILE, history)):
        try:
            frame.reset_index(drop=True).to_parquet(out / name, index=False)
        except (ValueError, TypeError, ImportError) as exc:
            raise BundleError(f"cannot write {name}: {exc}") from exc

    import faiss

    say(f"building the item index over {len(item_vectors)} items")
    index, info = build_index(
        item_vectors, index_options, tune_queries=user_vectors if len(user_vectors) else None, log=say
    )
    faiss.write_index(index, str(out / INDEX_FILE))

    say(f"segmenting {len(user_vectors)} users")
    segments = segment_users(
        user_vectors,
        spec.user_ids,
        contents.users,
        contents.items,
        contents.history,
        rfm=contents.rfm,
        options=segment_options,
    )
    segments.save(out)

    files = {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in sorted(out.iterdir())}
    return {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_sha": _git_sha(),
        "dataset_name": contents.dataset_name,
        "config": contents.config,
        "counts": {
            "users": len(spec.user_ids),
            "items": len(spec.item_ids),
            "categories": len(spec.categories),
            "history": len(history),
        },
        "embedding_dim": int(item_vectors.shape[1]),
        "metric": "inner_product",
        "index": info.to_dict(),
        "metrics": {k: float(v) for k, v in contents.metrics.items()},
        "segments": segments.summary(),
        "files": files,
    }


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(
        json.dumps(obj, ensure_ascii=False, indent=1, allow_nan=True, default=_json_default), "utf-8"
    )


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", sha) else None


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes the rename durable; some filesystems refuse it, which is harmless here.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------------------------
# Loading


def resolve_bundle_dir(path: Path) -> Path:
    """A version directory as given, or the one `<path>/LATEST` names."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    latest = path / LATEST
    if latest.is_file():
        version = latest.read_text("utf-8").strip()
        if not _VERSION_RE.match(version):
            raise BundleError(f"{latest} names an invalid version {version!r}")
        target = path / version
        if not (target / MANIFEST).is_file():
            raise BundleError(f"{latest} points at {version!r}, but {target / MANIFEST} does not exist")
        return target
    raise BundleError(
        f"no bundle at {path}: expected {MANIFEST} (a version dir) or {LATEST} (a bundles root)"
    )


def read_manifest(bundle_dir: Path) -> dict[str, Any]:
    path = bundle_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or "schema_version" not in manifest or "files" not in manifest:
        raise BundleError(f"{path} is not a bundle manifest (no schema_version/files)")
    if manifest["schema_version"] != BUNDLE_SCHEMA_VERSION:
        raise BundleError(
            f"{path} has bundle schema version {manifest['schema_version']!r}; this code reads version "
            f"{BUNDLE_SCHEMA_VERSION}. Rebuild it with `explainrec build`."
        )
    return manifest


def verify_files(bundle_dir: Path, manifest: dict[str, Any]) -> None:
    """Check that every file the manifest lists exists with the recorded size and sha256."""
    files: dict[str, Any] = manifest["files"]
    missing_entries = [name for name in REQUIRED_FILES if name not in files]
    if missing_entries:
        raise BundleError(f"{bundle_dir / MANIFEST} does not list required files {missing_entries}")
    for name, entry in files.items():
        path = bundle_dir / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise BundleError(f"bundle file {path} is missing")
        size = path.stat().st_size
        if size != entry.get("bytes"):
            raise BundleError(
                f"bundle file {path} is truncated or changed: {size} bytes, manifest says "
                f"{entry.get('bytes')}"
            )
        if _sha256(path) != entry.get("sha256"):
            raise BundleError(f"bundle file {path} is corrupt: its sha256 does not match the manifest")


@dataclass(repr=False)
class Bundle:
    path: Path
    version: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    model_config: TwoTowerConfig
    feature_spec: FeatureSpec
    items: pd.DataFrame
    users: pd.DataFrame
    history_frame: pd.DataFrame  # the training positives as stored
    history: dict[str, np.ndarray]  # user_id -> item indices, oldest first
    item_vectors: np.ndarray
    user_vectors: np.ndarray
    catalog: ItemCatalog
    retriever: FaissRetriever
    segments: SegmentModel
    model: TwoTowerModel
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, verify: bool = True) -> Bundle:
        bundle_dir = resolve_bundle_dir(Path(path))
        manifest = read_manifest(bundle_dir)
        if verify:
            verify_files(bundle_dir, manifest)
        try:
            return cls._read(bundle_dir, manifest)
        except BundleError:
            raise
        except Exception as exc:  # a file that hashes fine but does not parse: still a bad bundle
            raise BundleError(f"bundle {bundle_dir} could not be read: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def _read(cls, d: Path, manifest: dict[str, Any]) -> Bundle:
        import faiss
        from safetensors.torch import load_file

        spec = FeatureSpec.from_json((d / FEATURE_SPEC_FILE).read_text("utf-8"))
        model_config = TwoTowerConfig(**json.loads((d / MODEL_CONFIG_FILE).read_text("utf-8")))
        item_vectors = _load_npy(d / ITEM_VECTORS_FILE, (len(spec.item_ids), model_config.dim))
        user_vectors = _load_npy(d / USER_VECTORS_FILE, (len(spec.user_ids), model_config.dim))
        items = pd.read_parquet(d / ITEMS_FILE)
        users = pd.read_parquet(d / USERS_FILE)
        history_frame = pd.read_parquet(d / HISTORY_FILE)
        catalog = ItemCatalog.from_items(items, spec.categories)
        index = faiss.read_index(str(d / INDEX_FILE))
        info = (
            IndexInfo(**{k: v for k, v in manifest.get("index", {}).items() if k != "description"})
            if manifest.get("index")
            else None
        )
        retriever = FaissRetriever(index, item_vectors, catalog, info)
        model = _load_model(model_config, load_file(str(d / MODEL_STATE_FILE)), spec)
        return cls(
            path=d,
            version=str(manifest.get("version", d.name)),
            manifest=manifest,
            config=json.loads((d / CONFIG_FILE).read_text("utf-8")),
            model_config=model_config,
            feature_spec=spec,
            items=items,
            users=users,
            history_frame=history_frame,
            history=_history_by_user(history_frame, spec),
            item_vectors=item_vectors,
            user_vectors=user_vectors,
            catalog=catalog,
            retriever=retriever,
            segments=SegmentModel.load(d),
            model=model,
            metrics=dict(manifest.get("metrics", {})),
        )

    def __repr__(self) -> str:
        n_items, n_users = len(self.feature_spec.item_ids), len(self.feature_spec.user_ids)
        return f"Bundle({self.path}, {n_items} items, {n_users} users, {self.retriever.description})"

    # -- conveniences for serving --
    def user_row(self, user_id: str) -> int | None:
        """Row of `user_id` in user_vectors/users, or None for an unknown user."""
        index = self.feature_spec.user_index(user_id)
        return index - 1 if index > 0 else None

    def seen_items(self, user_id: str) -> np.ndarray:
        return self.history.get(user_id, np.empty(0, dtype=np.int64))

    def exact_retriever(self) -> ExactRetriever:
        return ExactRetriever(self.item_vectors, self.catalog)

    def to_contents(self) -> BundleContents:
        """The inputs this bundle was written from, to re-index or re-segment into a new version."""
        from safetensors.torch import load_file

        state = load_file(str(self.path / MODEL_STATE_FILE))
        return BundleContents(
            config=self.config,
            model_config=self.model_config,
            model_state=state,
            feature_spec=self.feature_spec,
            item_vectors=self.item_vectors,
            user_vectors=self.user_vectors,
            items=self.items,
            users=self.users,
            history=self.history_frame,
            metrics=self.metrics,
            dataset_name=str(self.manifest.get("dataset_name", "")),
        )


def _load_npy(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise BundleError(f"{path} is not a plain numeric array: {exc}") from exc
    if arr.shape != shape or arr.dtype != np.float32:
        raise BundleError(f"{path} holds {arr.dtype}{list(arr.shape)}; expected float32{list(shape)}")
    return arr


def _load_model(config: TwoTowerConfig, state: dict[str, torch.Tensor], spec: FeatureSpec) -> TwoTowerModel:
    # The item-feature buffers are part of the state dict; placeholders of the right shape get overwritten.
    n = config.n_items
    placeholder = ItemFeatures(
        categories=torch.zeros(n, config.n_categories),
        price_bucket=torch.zeros(n, dtype=torch.long),
        text=torch.zeros(n, config.text_dim),
    )
    model = TwoTowerModel(config, placeholder)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise BundleError(f"tower weights do not fit the model config: {exc}") from exc
    model.eval()
    return model


def _history_by_user(frame: pd.DataFrame, spec: FeatureSpec) -> dict[str, np.ndarray]:
    if frame.empty:
        return {}
    index = {item: i for i, item in enumerate(spec.item_ids)}
    ordered = frame.sort_values(["user_id", "timestamp"], kind="stable")
    idx = ordered["item_id"].astype(str).map(index)
    if idx.isna().any():
        raise BundleError("history names items that are not in the feature spec")
    grouped = pd.Series(idx.to_numpy(dtype=np.int64)).groupby(ordered["user_id"].astype(str).to_numpy())
    return {str(user): group.to_numpy(dtype=np.int64) for user, group in grouped}


__all__ = [
    "BUNDLE_SCHEMA_VERSION",
    "Bundle",
    "BundleContents",
    "point_latest",
    "read_manifest",
    "resolve_bundle_dir",
    "verify_files",
    "write_bundle",
]
