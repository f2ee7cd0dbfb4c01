"""`vidtempo-ablation`: a tiny grid x seeds run on structured synthetic data, the table and its bootstrap CIs."""

import json

import numpy as np
import pytest
from factories import make_synthetic

from vidtempo.cli import ablation


def test_bootstrap_ci_by_hand():
    constant = np.full((2, 7), 0.4)
    assert ablation.bootstrap_ci(constant) == pytest.approx((0.4, 0.4))
    rng = np.random.default_rng(3)
    aps = rng.uniform(size=(3, 40))
    low, high = ablation.bootstrap_ci(aps)
    assert low < aps.mean() < high
    # a naive loop over the same resamples gives the same interval
    picks = np.random.default_rng(0).integers(0, 40, size=(ablation.BOOTSTRAP_SAMPLES, 40))
    naive = [np.mean([np.mean([aps[s, q] for q in pick]) for s in range(3)]) for pick in picks]
    assert (low, high) == pytest.approx(tuple(np.percentile(naive, [2.5, 97.5])))
    wide = ablation.bootstrap_ci(aps[:, :10])
    assert wide[1] - wide[0] > high - low  # fewer queries, wider interval


def test_parse_assignments_types_and_errors():
    assert ablation.parse_assignments(["bank_size=0,64", "loss=circle"], multi=True) == {
        "bank_size": [0, 64], "loss": ["circle"]}  # fmt: skip
    assert ablation.parse_assignments(["key-momentum=0.5", "max_steps=none"], multi=False) == {
        "key_momentum": 0.5, "max_steps": None}  # fmt: skip
    with pytest.raises(ValueError, match="not a TrainConfig field"):
        ablation.parse_assignments(["bnak_size=3"], multi=False)


def test_ablation_runner_writes_one_table(tmp_path, capsys):
    desc, _, descriptors, pairs = make_synthetic(tmp_path, num_groups=22, num_distractors=50)
    held = [f"g{g:03d}" for g in range(18, 22)]
    train_pairs = [p for p in pairs if p[0][:4] not in held]
    (tmp_path / "train.json").write_text(json.dumps(train_pairs))
    queries = [f"{g}_0" for g in held]
    database = [f"{g}_{k}" for g in held for k in (1, 2)] + [f"d{d:04d}" for d in range(40, 50)]
    fivr = {"versions": {"tiny": {"queries": queries, "database": queries + database}},
            "annotation": {f"{g}_0": {"ND": [f"{g}_1", f"{g}_2"]} for g in held}}  # fmt: skip
    (tmp_path / "fivr.json").write_text(json.dumps(fivr))
    argv = ["--descriptors", str(desc), "--pairs", str(tmp_path / "train.json"), "--annotations",
            str(tmp_path / "fivr.json"), "--version", "tiny", "--grid", "aggregator=transformer,gru",
            "--seeds", "0", "1", "--output", str(tmp_path / "abl"),
            "--set", "hidden_size=16", "--set", "num_attention_heads=4", "--set", "intermediate_size=32",
            "--set", "epochs=1", "--set", "batch_size=16", "--set", "negatives_per_anchor=4", "--set",
            "bank_size=64", "--set", "num_frames=32", "--set", "learning_rate=3e-3", "--set", "val_fraction=0",
            "--set", "dropout=0.1"]  # fmt: skip
    assert ablation.main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "abl" / "ablation.json").read_text())
    assert [r["variant"] for r in report["rows"]] == ["aggregator=transformer", "aggregator=gru"]
    for row in report["rows"]:
        assert [r["seed"] for r in row["runs"]] == [0, 1]
        dsvr = row["tasks"]["DSVR"]
        seed_maps = [r["metrics"]["DSVR"] for r in row["runs"]]
        assert dsvr["map"] == pytest.approx(np.mean(seed_maps))
        assert dsvr["ci95"][0] <= dsvr["map"] <= dsvr["ci95"][1] and dsvr["queries"] == 4
    table = (tmp_path / "abl" / "ablation.md").read_text()
    assert "| aggregator=gru |" in table and table.strip() in out
    # a second run reuses the trained models and gives the same table
    assert ablation.main(argv) == 0
    assert (tmp_path / "abl" / "ablation.md").read_text() == table
    assert ablation.main([*argv[:-2], "--set", "nonsense=1"]) == 2
