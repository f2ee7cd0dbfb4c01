"""The `evaluate` modules stand alone: each folder, copied out of the repo, loads with `evaluate.load(folder)` in
a process that blocks every vidtempo import, and gives the library functions' numbers on the same inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from isolation import BLOCK_VIDTEMPO

from vidtempo.evaluation.ap import average_precision, fivr_task_map
from vidtempo.evaluation.grounding import grounding_metrics
from vidtempo.evaluation.text_video_retrieval import retrieval_metrics

METRICS = Path(__file__).resolve().parents[2] / "evaluation" / "metrics"
NAMES = ("video_map", "fivr_map", "grounding_recall", "retrieval_recall")


def _inputs() -> dict:
    rng = np.random.default_rng(0)
    scores = rng.random((4, 9)).round(3).tolist()
    relevant = (rng.random((4, 9)) < 0.4).astype(int)
    relevant[:, 0] = 1  # every query has a positive
    labels = [[["", "ND", "DS", "CS", "IS"][int(i)] for i in row] for row in rng.integers(0, 5, (4, 9))]
    starts = rng.uniform(0, 10, (5, 3))
    moments = [np.stack([s, s + rng.uniform(1, 5, 3)], axis=1).ravel().tolist() for s in starts]
    truth = [[float(a), float(a + 3)] for a in rng.uniform(0, 10, 5)]
    similarity = rng.standard_normal((6, 6)).tolist()
    return dict(scores=scores, relevant=relevant.tolist(), labels=labels, moments=moments, truth=truth,
                similarity=similarity)  # fmt: skip


@pytest.mark.slow  # a fresh interpreter imports evaluate + datasets (~10 s)
def test_copied_metric_folders_load_without_vidtempo_and_match_the_library(tmp_path):
    for name in NAMES:  # what a user copies: symlinked library files become plain files
        shutil.copytree(METRICS / name, tmp_path / name)
        assert not any(p.is_symlink() for p in (tmp_path / name).iterdir())
    data = _inputs()
    (tmp_path / "inputs.json").write_text(json.dumps(data))
    script = BLOCK_VIDTEMPO + textwrap.dedent(
        """
        import json
        import evaluate
        d = json.load(open("inputs.json"))
        out = {
            "video_map": evaluate.load("video_map").compute(predictions=d["scores"], references=d["relevant"]),
            "fivr_map": evaluate.load("fivr_map").compute(predictions=d["scores"], references=d["labels"]),
            "grounding": evaluate.load("grounding_recall").compute(predictions=d["moments"], references=d["truth"]),
            "retrieval": evaluate.load("retrieval_recall").compute(
                predictions=d["similarity"], references=list(range(6))),
        }
        assert not [m for m in sys.modules if m.split(".")[0] == "vidtempo"]
        json.dump(out, open("out.json", "w"))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": ""}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads((tmp_path / "out.json").read_text())

    aps = [average_precision(s, np.asarray(r) > 0) for s, r in zip(data["scores"], data["relevant"])]
    assert got["video_map"]["average_precision"] == pytest.approx(aps, abs=1e-12)
    assert got["video_map"]["map"] == pytest.approx(float(np.mean(aps)), abs=1e-12)
    assert got["fivr_map"] == pytest.approx(fivr_task_map(data["scores"], data["labels"]), abs=1e-12)
    moments = [np.asarray(m).reshape(-1, 2) for m in data["moments"]]
    assert got["grounding"] == pytest.approx(grounding_metrics(moments, data["truth"]), abs=1e-9)
    library = retrieval_metrics(np.asarray(data["similarity"]))
    flat = {f"{d}_{k}": v for d, values in library.items() for k, v in values.items()}
    assert got["retrieval"] == pytest.approx(flat, abs=1e-9)
