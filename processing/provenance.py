"""What produced an output folder: the model by absolute path and content hash (a moved copy still matches, a
changed one does not), for descriptor folders, indexes and training runs."""

from __future__ import annotations

import hashlib
from pathlib import Path


def model_record(name_or_path: str) -> dict:
    """`{"model", "model_sha256"}`: a local folder by its absolute path and the sha256 of its weights and
    config; a Hub name (or "none") as given, with no hash."""
    path = Path(name_or_path)
    if not path.is_dir():
        return {"model": str(name_or_path), "model_sha256": None}
    digest = hashlib.sha256()
    files = sorted(path.glob("*.safetensors")) + [p for p in (path / "config.json",) if p.is_file()]
    for file in files:
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return {"model": str(path.resolve()), "model_sha256": digest.hexdigest() if files else None}


def require_local_or_hub(name_or_path: str, what: str = "model") -> None:
    """Fail at once, with the fix, when `name_or_path` is neither a local folder nor reachable: a Hub name with
    the Hub offline (`HF_HUB_OFFLINE=1`), or a path-like name that does not exist."""
    from huggingface_hub import constants

    if Path(name_or_path).is_dir():
        return
    looks_like_path = str(name_or_path).startswith((".", "/", "~")) or str(name_or_path).count("/") > 1
    if looks_like_path:
        raise FileNotFoundError(f"{what} {name_or_path}: no such folder")
    if constants.HF_HUB_OFFLINE:
        raise ValueError(
            f"{what} {name_or_path!r} is not a local folder, and the Hugging Face Hub is offline (HF_HUB_OFFLINE=1): "
            "pass a local folder (for example one written by save_pretrained or vidtempo-convert)"
        )


def same_model(recorded: dict, current: dict) -> bool:
    """Whether two `model_record`s name the same model: equal hashes when both have one, else equal names."""
    old, new = recorded.get("model_sha256"), current.get("model_sha256")
    if old or new:
        return old == new
    return recorded.get("model") == current.get("model")


__all__ = ["model_record", "require_local_or_hub", "same_model"]
