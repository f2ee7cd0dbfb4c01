"""The reload-without-vidtempo check: a published folder (TCA alone or the complete TCA video model, both
taking `frame_features`) must load with
`AutoModel.from_pretrained(folder, trust_remote_code=True)` in a Python process that cannot import vidtempo
(what a Hub user without the package has) and give the same embeddings."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

# Prefix of a child-process script: every `vidtempo` import raises ImportError, and the block checks itself.
BLOCK_VIDTEMPO = """
import importlib.abc
import sys


class _BlockVidtempo(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "vidtempo" or name.startswith("vidtempo."):
            raise ImportError(f"vidtempo is blocked in this process ({name})")
        return None


sys.meta_path.insert(0, _BlockVidtempo())
try:
    import vidtempo.modeling  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the import blocker failed")
"""

_EMBED_SCRIPT = """
import numpy as np, torch
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
data = np.load(sys.argv[2])
with torch.no_grad():
    keys = sorted(data.files, key=lambda k: int(k[1:]))
    out = [model(frame_features=torch.from_numpy(data[k].astype(np.float32))[None]).video_embeds[0].numpy()
           for k in keys]
np.save(sys.argv[3], np.stack(out))
"""


def embed_without_vidtempo(folder: str | os.PathLike, descriptors: Sequence[np.ndarray]) -> np.ndarray:
    """Video embeddings [len(descriptors), H] of the TCA model saved in `folder`, loaded with
    `AutoModel.from_pretrained(folder, trust_remote_code=True)` in a subprocess that cannot import vidtempo.
    Raises RuntimeError (with the child's stderr) when the folder does not load there."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp, "inputs.npz"), Path(tmp, "outputs.npy")
        np.savez(inputs, **{f"v{i}": np.asarray(d, dtype=np.float32) for i, d in enumerate(descriptors)})
        env = {**os.environ, "PYTHONPATH": ""}
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                BLOCK_VIDTEMPO + _EMBED_SCRIPT,
                str(Path(folder).resolve()),
                str(inputs),
                str(outputs),
            ],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            raise RuntimeError(
                f"reload without vidtempo ({folder}): AutoModel.from_pretrained(trust_remote_code=True) failed "
                f"in a process that cannot import vidtempo:\n{run.stderr[-2000:]}"
            )
        return np.load(outputs)


def reload_difference(
    folder: str | os.PathLike, descriptors: Mapping[str, np.ndarray], expected: np.ndarray
) -> float:
    """Largest |difference| between `expected` ([len(descriptors), H], in the order of `descriptors`) and the
    embeddings of `folder` reloaded without vidtempo (`embed_without_vidtempo`)."""
    got = embed_without_vidtempo(folder, list(descriptors.values()))
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        raise RuntimeError(
            f"reload without vidtempo ({folder}): embeddings of shape {got.shape}, expected {expected.shape}"
        )
    return float(np.abs(got - expected).max())
