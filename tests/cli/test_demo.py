"""The main job (`make demo`) end to end at miniature size: videos -> descriptors -> PCA -> TCA training ->
evaluation -> published folder -> reload -> search."""

import json

import pytest
import yaml

from vidtempo.cli.demo import build_parser, run

TINY = [
    "--num-sources",
    "4",
    "--num-distractors",
    "6",
    "--seconds",
    "20",
    "20",
    "--epochs",
    "2",
    "--batch-size",
    "4",
    "--bank-size",
    "32",
    "--pca-dim",
    "32",
    "--image-size",
    "64",
    "--workers",
    "1",
    "--no-progress",
]


def _card_metrics(readme: str) -> dict[str, float]:
    front_matter = readme.split("---")[1]
    meta = yaml.safe_load(front_matter)
    assert meta["library_name"] == "transformers"
    metrics = {}
    for entry in meta["model-index"][0]["results"]:
        for metric in entry["metrics"]:
            metrics[metric["name"]] = metric["value"]
    return metrics


@pytest.mark.slow
def test_miniature_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    summary = run(build_parser().parse_args([*TINY, "--output", str(out)]))

    # every method of the summary table was evaluated on the held-out split
    names = [row["name"] for row in summary["rows"]]
    assert any(name.startswith("baseline") for name in names) and "TCA_f (chamfer)" in names
    for row in summary["rows"]:
        for task in ("DSVR", "CSVR", "ISVR"):
            assert 0.0 < row[task] <= 1.0

    # the card's model-index holds exactly the evaluation JSON's numbers
    results = json.loads((out / "results.json").read_text())
    expected = {
        f"{task} ({result['similarity']})": round(value, 4)
        for result in results
        for task, value in result["metrics"].items()
        if "/" not in task and value is not None
    }
    card = _card_metrics((out / "published" / "README.md").read_text())
    assert card == pytest.approx(expected, abs=1e-9)
    assert len(card) == 3 * len(results)

    # the published folder is Hub-ready and reloads (here and without vidtempo) to the trained embeddings
    published = out / "published"
    assert (published / "model.safetensors").is_file() and not list(published.glob("*.bin"))
    assert "auto_map" in json.loads((published / "config.json").read_text())
    assert summary["max_reload_diff"] <= 1e-6
    assert summary["max_reload_diff_without_vidtempo"] <= 1e-5

    # the plot of the run is a real PNG next to the results
    assert (out / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and summary["plot"] == str(
        out / "demo.png"
    )

    # the search printed ranked matches with labels
    printed = capsys.readouterr().out
    assert "top 8 of" in printed and "ND" in printed

    # a second run resumes every stage and reproduces the results exactly
    again = run(build_parser().parse_args([*TINY, "--output", str(out)]))
    assert again["rows"] == summary["rows"]
    assert "reusing the trained model" in capsys.readouterr().out

    # an interrupted training stage (run folder without a finished model) is replaced, not refused, and the
    # retrained model gives the same results (same seed)
    import shutil

    shutil.rmtree(out / "train" / "model")
    (out / "train" / "metrics.json").unlink()
    third = run(build_parser().parse_args([*TINY, "--output", str(out)]))
    assert "replacing the unfinished training run" in capsys.readouterr().out
    assert third["rows"] == summary["rows"]


def test_summary_figure_shows_the_numbers_it_is_given():
    from vidtempo.cli.demo import summary_figure

    metrics = {
        "history": [{"step": s, "loss": 10.0 - s} for s in range(1, 9)],
        "validation": [{"step": 0, "val_map": 0.5}, {"step": 4, "val_map": 0.7}, {"step": 8, "val_map": 0.6}],
        "best_step": 4,
    }
    rows = [("baseline: mean (cosine)", {"DSVR": 0.8, "CSVR": 0.6, "ISVR": 0.5}),
            ("TCA_c (cosine)", {"DSVR": 0.9, "CSVR": 0.7, "ISVR": 0.65})]  # fmt: skip
    fig = summary_figure(metrics, rows)
    curve, bars, validation = fig.axes  # the twin axis is created last
    assert list(curve.lines[0].get_ydata()) == [10.0 - s for s in range(1, 9)]
    assert list(validation.lines[0].get_xdata()) == [0, 4, 8]
    assert list(validation.lines[0].get_ydata()) == [0.5, 0.7, 0.6]
    assert list(validation.lines[1].get_xdata()) == [4, 4]  # the kept step
    heights = [patch.get_height() for patch in bars.patches]
    assert heights == [0.8, 0.6, 0.5, 0.9, 0.7, 0.65]  # method by method, DSVR / CSVR / ISVR
    assert [t.get_text() for t in bars.get_legend().get_texts()] == [name for name, _ in rows]
