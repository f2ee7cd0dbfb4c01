"""Training configs from YAML: a dataclass's fields, unknown keys refused by name, flags on top."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TypeVar

import yaml

ConfigT = TypeVar("ConfigT")


def config_from_yaml(cls: type[ConfigT], path: str | os.PathLike, **overrides) -> ConfigT:
    """`cls(**yaml_mapping)` with `overrides` (those not None) applied on top; a file that is not a mapping or
    that names a field `cls` lacks is refused with the file and the valid keys in the message."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; valid keys: {sorted(known)}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**data)


__all__ = ["config_from_yaml"]
