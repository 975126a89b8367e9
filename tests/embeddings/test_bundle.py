"""Bundle round trip, atomic versions and LATEST, and refusal of damaged bundles."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from embeddings.bundle import (
    BUNDLE_SCHEMA_VERSION,
    LATEST,
    MANIFEST,
    REQUIRED_FILES,
    Bundle,
    write_bundle,
)
from embeddings.inference import UserEncoder
from embeddings.retrieval import ExactRetriever, SearchFilters
from explainrec.errors import BundleError
from tests.support.toy_shop import INJECTION_TITLE, XSS_TITLE


def _copy(bundle: Bundle, tmp_path: Path) -> Path:
    target = tmp_path / bundle.version
    shutil.copytree(bundle.path, target)
    for f in target.iterdir():
        f.chmod(0o644)
    return target


def test_toy_bundle_has_the_promised_shape(toy_bundle: Bundle) -> None:
    b = toy_bundle
    assert len(b.feature_spec.user_ids) == 20 and len(b.feature_spec.item_ids) == 40
    assert b.item_vectors.dtype == np.float32 and b.item_vectors.shape == (40, 16)
    assert b.user_vectors.shape == (20, 16)
    assert b.items["item_id"].tolist() == b.feature_spec.item_ids
    assert {XSS_TITLE, INJECTION_TITLE} <= set(b.items["title"])
    assert sorted(b.feature_spec.categories) == ["Books", "Games", "Garden", "Kitchen"]
    assert not b.model.training
    assert set(b.history) == set(b.feature_spec.user_ids)
    assert all(len(v) == 7 for v in b.history.values())


def test_manifest_lists_every_file_with_its_hash(toy_bundle: Bundle) -> None:
    m = toy_bundle.manifest
    assert m["schema_version"] == BUNDLE_SCHEMA_VERSION
    for key in (
        "created_at",
        "git_sha",
        "config",
        "counts",
        "embedding_dim",
        "metric",
        "index",
        "metrics",
        "segments",
        "dataset_name",
    ):
        assert key in m
    assert m["counts"] == {"users": 20, "items": 40, "categories": 4, "history": 140}
    assert m["embedding_dim"] == 16 and m["metric"] == "inner_product"
    on_disk = {p.name for p in toy_bundle.path.iterdir()} - {MANIFEST}
    assert set(m["files"]) == on_disk and set(REQUIRED_FILES) <= on_disk
    for name, entry in m["files"].items():
        data = (toy_bundle.path / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert 0.0 <= m["metrics"]["recall@10"] <= 1.0


def test_round_trip_gives_identical_results(toy_bundle: Bundle, toy_root: Path) -> None:
    again = Bundle.load(toy_bundle.path)
    np.testing.assert_array_equal(again.item_vectors, toy_bundle.item_vectors)
    filters = SearchFilters(categories=["Books", "Garden"], max_price=60.0)
    for u in range(20):
        seen = toy_bundle.history[toy_bundle.feature_spec.user_ids[u]]
        a = toy_bundle.retriever.search(toy_bundle.user_vectors[u], 5, exclude=seen, filters=filters)
        b = again.retriever.search(again.user_vectors[u], 5, exclude=seen, filters=filters)
        ref = ExactRetriever(toy_bundle.item_vectors, toy_bundle.catalog).search(
            toy_bundle.user_vectors[u], 5, exclude=seen, filters=filters
        )
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[0], ref[0])
    np.testing.assert_array_equal(again.segments.labels, toy_bundle.segments.labels)


def test_loaded_towers_reproduce_the_stored_vectors(toy_bundle: Bundle) -> None:
    with torch.no_grad():
        items = toy_bundle.model.all_item_vectors().numpy()
    np.testing.assert_allclose(items, toy_bundle.item_vectors, atol=1e-5)
    enc = UserEncoder(toy_bundle)
    for u, user_id in enumerate(toy_bundle.feature_spec.user_ids):
        row = toy_bundle.users.iloc[u].to_dict()
        history = [toy_bundle.feature_spec.item_ids[i] for i in toy_bundle.history[user_id]]
        np.testing.assert_allclose(enc.encode(row, history, user_id), toy_bundle.user_vectors[u], atol=1e-5)


def test_latest_follows_the_newest_version_and_old_ones_stay(toy_bundle: Bundle, tmp_path: Path) -> None:
    first = write_bundle(toy_bundle.to_contents(), tmp_path, version="v1", log=None)
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    assert (tmp_path / LATEST).read_text().strip() == "v1"
    second = write_bundle(toy_bundle.to_contents(), tmp_path, version="v2", log=None)
    assert (tmp_path / LATEST).read_text().strip() == "v2"
    assert Bundle.load(tmp_path).path == second
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp files left behind"
    with pytest.raises(BundleError, match="already exists"):
        write_bundle(toy_bundle.to_contents(), tmp_path, version="v1", log=None)
    with pytest.raises(BundleError, match="bad bundle version"):
        write_bundle(toy_bundle.to_contents(), tmp_path, version="../escape", log=None)


def test_failed_write_leaves_nothing_behind(toy_bundle: Bundle, tmp_path: Path) -> None:
    contents = toy_bundle.to_contents()
    contents.items = contents.items.assign(weird=pd.Series([object()] * len(contents.items), dtype=object))
    with pytest.raises(BundleError, match=r"items\.parquet"):
        write_bundle(contents, tmp_path, version="broken", log=None)
    assert list(tmp_path.iterdir()) == []


def test_misaligned_contents_are_refused(toy_bundle: Bundle, tmp_path: Path) -> None:
    contents = toy_bundle.to_contents()
    contents.items = contents.items.iloc[::-1].reset_index(drop=True)
    with pytest.raises(BundleError, match="items rows are not aligned"):
        write_bundle(contents, tmp_path, log=None)
    contents = toy_bundle.to_contents()
    contents.user_vectors = contents.user_vectors[:5]
    with pytest.raises(BundleError, match="user_vectors has shape"):
        write_bundle(contents, tmp_path, log=None)


@pytest.mark.parametrize(
    "name", ["item_vectors.npy", "index.faiss", "model.safetensors", "items.parquet", "segments.json"]
)
def test_corrupt_file_is_refused_by_name(toy_bundle: Bundle, tmp_path: Path, name: str) -> None:
    d = _copy(toy_bundle, tmp_path)
    data = bytearray((d / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / name).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"{name}.*corrupt"):
        Bundle.load(d)


def test_truncated_and_missing_files_are_refused(toy_bundle: Bundle, tmp_path: Path) -> None:
    d = _copy(toy_bundle, tmp_path)
    data = (d / "index.faiss").read_bytes()
    (d / "index.faiss").write_bytes(data[: len(data) // 3])
    with pytest.raises(BundleError, match=r"index\.faiss.*truncated"):
        Bundle.load(d)
    (d / "index.faiss").unlink()
    with pytest.raises(BundleError, match=r"index\.faiss.*missing"):
        Bundle.load(d)


def test_unknown_schema_and_bad_manifest_are_refused(toy_bundle: Bundle, tmp_path: Path) -> None:
    d = _copy(toy_bundle, tmp_path)
    manifest = json.loads((d / MANIFEST).read_text())
    (d / MANIFEST).write_text(json.dumps({**manifest, "schema_version": 999}))
    with pytest.raises(BundleError, match="schema version 999"):
        Bundle.load(d)
    (d / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match=r"manifest\.json"):
        Bundle.load(d)


def test_missing_bundle_and_dangling_latest_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no bundle"):
        Bundle.load(tmp_path / "nowhere")
    (tmp_path / LATEST).write_text("gone\n")
    with pytest.raises(BundleError, match="points at 'gone'"):
        Bundle.load(tmp_path)


def test_no_file_needs_pickle(toy_bundle: Bundle) -> None:
    for path in toy_bundle.path.glob("*.npy"):
        np.load(path, allow_pickle=False)
    assert not [p for p in toy_bundle.path.iterdir() if p.suffix in {".pkl", ".pickle", ".pt", ".ckpt"}]
