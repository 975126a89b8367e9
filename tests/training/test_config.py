"""load_config: YAML + pydantic (extra=forbid), dotted overrides, errors naming key and file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from explainrec.errors import ConfigError
from training.config import StrictModel, load_config


class Model(StrictModel):
    dim: int = 64
    tower: list[int] = Field(default_factory=lambda: [128])


class Trainer(StrictModel):
    max_epochs: int = 10
    lr: float = 1e-3
    progress: bool = True


class Config(StrictModel):
    name: str
    model: Model = Model()
    trainer: Trainer = Trainer()


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_yaml_and_applies_typed_overrides(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "name: demo\nmodel:\n  dim: 32\n")
    cfg = load_config(
        path, Config, ["model.dim=128", "trainer.progress=false", "model.tower=[256, 64]", "trainer.lr=0.01"]
    )
    assert cfg.name == "demo"
    assert cfg.model.dim == 128
    assert cfg.model.tower == [256, 64]
    assert cfg.trainer.progress is False
    assert cfg.trainer.lr == pytest.approx(0.01)
    assert cfg.trainer.max_epochs == 10


def test_override_creates_missing_section(tmp_path: Path) -> None:
    cfg = load_config(_yaml(tmp_path, "name: demo\n"), Config, ["trainer.max_epochs=3"])
    assert cfg.trainer.max_epochs == 3


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "name: demo\nmodel:\n  dimm: 32\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, Config)
    assert "model.dimm" in str(err.value)
    assert str(path) in str(err.value)


def test_wrong_type_names_key_file_and_value(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "name: demo\ntrainer:\n  max_epochs: many\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, Config)
    message = str(err.value)
    assert "trainer.max_epochs" in message and str(path) in message and "'many'" in message


def test_bad_override_names_the_override(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "name: demo\n")
    with pytest.raises(ConfigError, match=r"model\.size"):
        load_config(path, Config, ["model.size=3"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(path, Config, ["model.dim"])
    with pytest.raises(ConfigError, match="not a section"):
        load_config(path, Config, ["name.first=x"])


def test_missing_required_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing required key 'name'"):
        load_config(_yaml(tmp_path, "model: {dim: 8}\n"), Config)


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "name: demo\nmodel: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_config(path, Config)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", Config)
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_yaml(tmp_path, "- a\n- b\n"), Config)
