"""`explainrec train` end to end on a tiny demo shop, config handling, and a 2-process DDP run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embeddings.bundle import Bundle
from embeddings.inference import UserEncoder
from explainrec.cli import main
from explainrec.errors import ConfigError
from training.config import load_config
from training.train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "data.demo_users=60",
    "data.demo_items=80",
    "features.use_text=false",
    "optim.batch_size=64",
    "trainer.max_epochs=3",
    "trainer.accelerator=cpu",
]


@pytest.mark.parametrize("name", ["demo.yaml", "ml100k.yaml", "ml100k_mf.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    config = load_config(ROOT / "configs" / name, TrainConfig)
    assert config.trainer.patience >= 1 and config.model.dim > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.similarity=dot"], "needs history_tied false"),
        (["model.wide=true"], "wide needs use_history"),
        (["model.use_item_id=false", "model.use_content=false"], "item tower needs"),
    ],
)
def test_inconsistent_model_settings_are_config_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(ROOT / "configs" / "demo.yaml", TrainConfig, overrides)


def test_unknown_keys_and_bad_values_name_the_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  dimm: 8\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"model\.dimm") as err:
        load_config(path, TrainConfig)
    assert "bad.yaml" in str(err.value)
    good = tmp_path / "good.yaml"
    good.write_text("model:\n  dim: 8\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        load_config(good, TrainConfig, ["optim.lr=fast"])
    assert load_config(good, TrainConfig, ["loss.uniform_negatives=-1"]).loss.uniform_negatives == -1


def test_train_writes_a_bundle_whose_vectors_the_serving_encoder_reproduces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--config", str(ROOT / "configs/demo.yaml"), "--out", str(tmp_path), "--no-progress"]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    assert "val_ndcg@10" in capsys.readouterr().out
    bundle = Bundle.load(tmp_path / "bundles")
    spec = bundle.feature_spec
    assert bundle.item_vectors.shape == (len(spec.item_ids), bundle.model.config.dim)
    assert bundle.user_vectors.shape[0] == len(spec.user_ids)
    metrics = bundle.manifest["metrics"]
    assert 0.0 <= metrics["val_ndcg@10"] <= 1.0
    # The reported best is the epoch the checkpoint kept, with the score the CSV log has for it
    # (a callback reading metrics too early would report the previous epoch's).
    (run,) = (tmp_path / "runs").iterdir()
    (best_checkpoint,) = (run / "checkpoints").glob("best-*.ckpt")
    assert best_checkpoint.stem == f"best-epoch={int(metrics['epochs_to_best'])}"
    logged = pd.read_csv(run / "logs" / "version_0" / "metrics.csv").dropna(subset=["val_ndcg@10"])
    best_row = logged.loc[logged["val_ndcg@10"].idxmax()]
    assert int(best_row["epoch"]) == int(metrics["epochs_to_best"])
    assert metrics["val_ndcg@10"] == pytest.approx(float(best_row["val_ndcg@10"]), abs=1e-6)

    # Training's user vectors and the serving encoder must agree for a known user.
    encoder = UserEncoder(bundle)
    raw_history = pd.read_parquet(next((tmp_path / "bundles").glob("*/history.parquet")))
    user = raw_history["user_id"].iloc[0]
    mine = raw_history[raw_history["user_id"] == user].sort_values("timestamp", kind="stable")
    profile = bundle.users.set_index("user_id").loc[user].to_dict()
    profile = {k: v for k, v in profile.items() if k in spec.profile_fields and not pd.isna(v)}
    vector = encoder.encode(profile, history_item_ids=mine["item_id"].tolist(), user_id=user)
    assert np.allclose(vector, bundle.user_vectors[spec.user_ids.index(user)], atol=1e-4)


def test_missing_data_path_is_a_config_error(tmp_path: Path) -> None:
    config = load_config(ROOT / "configs/ml100k.yaml", TrainConfig, ["data.path=null"])
    from training.train import train

    with pytest.raises(ConfigError, match=r"data\.path"):
        train(config, tmp_path, progress=False)


@pytest.mark.slow
def test_two_process_ddp_on_cpu_finishes_and_its_bundle_loads(tmp_path: Path) -> None:
    overrides = [*TINY, "trainer.strategy=ddp", "trainer.devices=2", "trainer.max_epochs=1"]
    command = [
        sys.executable,
        "-m",
        "explainrec.cli",
        "train",
        "--config",
        str(ROOT / "configs/demo.yaml"),
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    for item in overrides:
        command += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "distributed_backend=gloo" in done.stderr or "Initializing distributed" in done.stderr
    bundle = Bundle.load(tmp_path / "bundles")
    assert bundle.item_vectors.shape[0] == len(bundle.feature_spec.item_ids)
    assert len(list((tmp_path / "bundles").iterdir())) == 2  # one version + LATEST: only rank 0 wrote


def test_build_from_a_training_checkpoint_reproduces_the_trained_bundle(tmp_path: Path) -> None:
    args = ["train", "--config", str(ROOT / "configs/demo.yaml"), "--out", str(tmp_path), "--no-progress"]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    trained = Bundle.load(tmp_path / "bundles")
    (checkpoint,) = (tmp_path / "runs").glob("*/checkpoints/best-*.ckpt")

    assert main(["build", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "rebuilt")]) == 0
    rebuilt = Bundle.load(tmp_path / "rebuilt")
    assert rebuilt.feature_spec.item_ids == trained.feature_spec.item_ids
    assert np.allclose(rebuilt.item_vectors, trained.item_vectors, atol=1e-5)
    assert np.allclose(rebuilt.user_vectors, trained.user_vectors, atol=1e-5)
    score = trained.manifest["metrics"]["val_ndcg@10"]
    assert rebuilt.manifest["metrics"]["val_ndcg@10"] == pytest.approx(score)


def test_build_rejects_a_file_that_is_not_a_training_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    for path, message in [
        (junk, "not a readable PyTorch checkpoint"),
        (foreign, "carries no explainrec training config"),
    ]:
        assert main(["build", "--checkpoint", str(path), "--out", str(tmp_path / "out")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
