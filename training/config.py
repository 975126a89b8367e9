"""YAML configs validated by pydantic, with dotted `--set key.sub=value` overrides.

    cfg = load_config(Path("configs/demo.yaml"), TrainConfig, ["model.dim=128"])

Schemas should set `model_config = ConfigDict(extra="forbid")` (see `StrictModel`) so that a
typo in a key is an error rather than a silently ignored setting. Every failure raises
`explainrec.errors.ConfigError` naming the offending key and the file (or the override).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from explainrec.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file whose top level must be a mapping (an empty file is `{}`)."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" line {mark.line + 1}, column {mark.column + 1}:"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where} invalid YAML: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    return raw


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML (`5`, `true`, `[a, b]`)."""
    key, sep, raw_value = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. model.dim=128")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        # An unparsable value is most likely meant as a plain string (e.g. `name=a: b`).
        value = raw_value
    parts = key.split(".")
    if any(not p for p in parts):
        raise ConfigError(f"override {override!r}: empty key segment in {key!r}")
    node: dict[str, Any] = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        elif not isinstance(child, dict):
            prefix = ".".join(parts[: depth + 1])
            raise ConfigError(f"override {override!r}: {prefix!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key {key!r}")
        elif err["type"] == "missing":
            lines.append(f"{source}: missing required key {key!r}")
        else:
            got = err.get("input")
            shown = repr(got) if not isinstance(got, Mapping | list) else type(got).__name__
            lines.append(f"{source}: key {key!r}: {err['msg']} (got {shown})")
    return "\n".join(lines)


def validate_config(data: Mapping[str, Any], schema: type[ModelT], source: str) -> ModelT:
    """Validate an already-loaded mapping; `source` names where it came from in errors."""
    try:
        return schema.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_config(path: Path, schema: type[ModelT], overrides: Sequence[str] = ()) -> ModelT:
    """Load `path`, apply dotted overrides, validate against `schema` (raises ConfigError)."""
    path = Path(path)
    data = read_yaml_mapping(path)
    for override in overrides:
        apply_override(data, override)
    source = str(path)
    if overrides:
        source += f" (with overrides: {', '.join(overrides)})"
    return validate_config(data, schema, source)
