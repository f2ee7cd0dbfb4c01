"""`vidtempo-demo-paper`: the decision rule, the claims table from per-query APs, and the recipe departures."""

import numpy as np
import pytest

from vidtempo.cli import demo_paper
from vidtempo.cli.demo import BASELINE_ROW, CASCADE_ROW, build_parser, recipe_departures, resolve_args


@pytest.mark.parametrize(
    ("rule", "low", "high", "expected"),
    [(">", 0.01, 0.05, "holds"), (">", -0.01, 0.05, "inconclusive"), (">", -0.05, -0.01, "fails"),
     (">=", -0.005, 0.02, "holds"), (">=", -0.02, 0.02, "inconclusive"), (">=", -0.05, -0.001, "fails"),
     ("not better", -0.03, 0.005, "holds"), ("not better", -0.01, 0.02, "inconclusive"),
     ("not better", 0.001, 0.02, "fails")],
)  # fmt: skip
def test_verdict_follows_the_written_rule(rule, low, high, expected):
    assert demo_paper.verdict(rule, low, high) == expected


def _run(bench, seed, rows, arm="main"):
    per_query = {name: {"per_query": {"DSVR": {f"q{i}": v for i, v in enumerate(values)}}, "seconds": sec}
                 for name, (values, sec) in rows.items()}  # fmt: skip
    return {"bench": bench, "arm": arm, "train_seed": seed, "per_query": per_query, "train_seconds": 5.0}


def test_claims_from_per_query_aps():
    rng = np.random.default_rng(0)
    runs = []
    for bench in (0, 1):
        for seed in (0, 1):
            base = rng.uniform(0.2, 0.6, 12)
            rows = {BASELINE_ROW: (base, 0.1), demo_paper.TCA_C: (base + 0.1, 0.1),
                    demo_paper.TCA_SYM: (base + 0.05, 1.0), demo_paper.TCA_F: (base + 0.2, 2.0),
                    demo_paper.CHAMFER_BASELINE: (base + 0.2, 2.0), CASCADE_ROW: (base + 0.1, 0.5)}  # fmt: skip
            runs.append(_run(bench, seed, rows))
    claims = {row["claim"]: row for row in demo_paper.claim_rows(runs)}
    assert claims["TCA_f > TCA_sym"]["d"] == pytest.approx(0.15)
    assert claims["TCA_f > TCA_sym"]["verdict"] == "holds"
    assert claims["TCA_sym > TCA_c"]["verdict"] == "fails"  # TCA_sym is .05 below TCA_c on every query
    assert claims["TCA_c > baseline (mean pooling, cosine)"]["ci95"] == pytest.approx([0.1, 0.1])
    assert claims["TCA_f > chamfer on raw descriptors"]["verdict"] == "inconclusive"  # equal: d = 0
    assert claims["circle >= InfoNCE (TCA_c)"]["verdict"] == "not run"  # no infonce arm
    assert claims["L3-iRMAC >= iMAC (TCA_f)"]["verdict"] == "not run"
    cascade = demo_paper.cascade_row(runs)
    assert cascade["speedup"] == pytest.approx(4.0)
    share = np.mean([np.mean(list(r["per_query"][CASCADE_ROW]["per_query"]["DSVR"].values()))
                     / np.mean(list(r["per_query"][demo_paper.TCA_F]["per_query"]["DSVR"].values())) for r in runs])  # fmt: skip
    assert cascade["share"] == pytest.approx(share) and share < 1


def test_recipe_departures_name_each_changed_setting():
    args = resolve_args(build_parser().parse_args([]))
    lines = recipe_departures(args)
    assert not any(line.startswith(("epochs", "batch_size", "bank_size")) for line in lines)
    # the two defaults that depart, each with its reason
    assert any(line.startswith("pca_dim: 256 (paper: 1024): ") for line in lines)
    assert any(line.startswith("learning_rate: 0.0001 (paper: 1e-05): ") for line in lines)
    args = resolve_args(
        build_parser().parse_args(["--learning-rate", "1e-5", "--bank-size", "512", "--pca-dim", "1024"])
    )
    lines = recipe_departures(args, descriptor_dim=512)
    assert (
        not any(line.startswith("learning_rate") for line in lines)
        and "bank_size: 512 (paper: 4096)" in lines
    )
    assert any(line.startswith("pca_dim: 512") for line in lines)
    assert args.num_sources == 32 and args.train_seed == 0


def test_arms_with_fewer_training_seeds_pair_with_the_same_seed_of_main():
    rng = np.random.default_rng(1)
    runs = []
    for bench in (0, 1, 2):
        for seed in (0, 1, 2):
            base = rng.uniform(0.2, 0.6, 8)
            main = {name: (base, 1.0) for name in (BASELINE_ROW, demo_paper.TCA_SYM, demo_paper.CHAMFER_BASELINE,
                                                   CASCADE_ROW)}  # fmt: skip
            main |= {demo_paper.TCA_C: (base + 0.01 * seed, 0.1), demo_paper.TCA_F: (base + 0.2, 1.0)}
            runs.append(_run(bench, seed, main))
            if seed == 0:  # the other arms ran training seed 0 only
                imac = {demo_paper.TCA_F: (base + 0.1, 1.0), demo_paper.CHAMFER_BASELINE: (base + 0.05, 1.0)}
                runs.append(_run(bench, seed, imac, arm="imac"))
                runs.append(_run(bench, seed, {demo_paper.TCA_C: (base - 0.03, 0.1)}, arm="infonce"))
    claims = {row["claim"]: row for row in demo_paper.claim_rows(runs)}
    circle = claims["circle >= InfoNCE (TCA_c)"]  # paired with main's training seed 0: d = .03 on every query
    assert (
        circle["runs"] == 3 and circle["ci95"] == pytest.approx([0.03, 0.03]) and circle["verdict"] == "holds"
    )
    imac = claims["L3-iRMAC >= iMAC (TCA_f)"]
    assert imac["runs"] == 3 and imac["d"] == pytest.approx(0.1) and imac["verdict"] == "holds"
    assert claims["L3-iRMAC >= iMAC (raw chamfer, untrained)"]["d"] == pytest.approx(-0.05)
    assert claims["TCA_c > baseline (mean pooling, cosine)"]["runs"] == 9
    assert claims["Transformer >= LSTM (TCA_c)"]["verdict"] == "not run"


def test_imac_arm_gets_its_own_descriptor_folders():
    from vidtempo.cli.demo import _pooling_suffix

    default = resolve_args(build_parser().parse_args([]))
    imac = resolve_args(build_parser().parse_args(["--pooling", "imac"]))
    assert _pooling_suffix(default) == "" and _pooling_suffix(imac) == "_imac"
    assert "pooling: imac (paper: l3_irmac)" in recipe_departures(imac)
    assert not any(line.startswith("pooling") for line in recipe_departures(default))
    assert demo_paper.ARMS["imac"] == {"pooling": "imac"}
    args = demo_paper.build_parser().parse_args(["--arms", "main", "imac", "--arm-train-seeds", "0"])
    assert args.arm_train_seeds == [0] and args.train_seeds == [0, 1, 2]
