"""Ship the pipelines of a model type with its published folder: the pipeline module (and the sibling files it
imports) copied next to the model code, and `custom_pipelines` written into `config.json`, so that
`pipeline(task, model=folder, trust_remote_code=True)` works where vidtempo is not installed."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from types import ModuleType

logger = logging.getLogger(__name__)


def pipeline_modules(model_type: str) -> list[ModuleType]:
    """The pipeline modules a model type ships (none for types without pipelines)."""
    if model_type == "tca_video":
        from ..modeling import pipeline_tca

        return [pipeline_tca]
    if model_type == "locvtp":
        from ..modeling import pipeline_locvtp

        return [pipeline_locvtp]
    return []


def ship_pipelines(folder: str | os.PathLike, model_type: str) -> dict:
    """Copy the pipeline code of `model_type` into `folder` and record its tasks in `folder/config.json`
    (`custom_pipelines`). Returns the `custom_pipelines` written ({} when the type has none)."""
    from transformers.dynamic_module_utils import get_relative_import_files

    folder = Path(folder)
    tasks: dict = {}
    for module in pipeline_modules(model_type):
        source = Path(module.__file__)
        for path in [source, *map(Path, get_relative_import_files(str(source)))]:
            shutil.copyfile(path, folder / path.name)
        tasks.update({task: dict(info) for task, info in module.PIPELINES.items()})
    if tasks:
        config_path = folder / "config.json"
        config = json.loads(config_path.read_text())
        config["custom_pipelines"] = tasks
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        logger.info("%s: shipped pipelines %s", folder, sorted(tasks))
    return tasks


__all__ = ["pipeline_modules", "ship_pipelines"]
