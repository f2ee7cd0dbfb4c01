"""Full-length embedding, similarity kinds and `vidtempo-eval` end to end on a tiny descriptor folder."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from factories import EVAL_DIM as DIM
from factories import tiny_collection

from vidtempo.cli import eval_tca
from vidtempo.evaluation import tca_eval
from vidtempo.evaluation.benchmarks import evaluate_fivr, load_benchmark
from vidtempo.evaluation.embedding import (
    CASCADE_OFFSET,
    VideoEmbeddings,
    compute_similarities,
    embed_descriptors,
    length_batches,
)
from vidtempo.modeling import TCAConfig, TCAModel
from vidtempo.processing.descriptor_store import write_descriptors


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    config = TCAConfig(input_size=DIM, hidden_size=DIM, num_attention_heads=2, intermediate_size=32)
    model = TCAModel(config).eval()
    path = tmp_path_factory.mktemp("tca")
    model.save_pretrained(path)
    return model, path


def naive_chamfer(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(np.mean([max(float(xi @ yj) for yj in y) for xi in x]))


def test_length_batches_cover_everything_and_respect_the_budget():
    lengths = [5, 1, 9, 3, 3, 20, 2]
    batches = length_batches(lengths, max_frames=10)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 10


def test_embed_descriptors_is_padding_invariant_and_keeps_order(tiny_model):
    model, _ = tiny_model
    descriptors, _ = tiny_collection()
    batched = embed_descriptors(model, descriptors, max_frames=64, progress=False)
    assert batched.ids == list(descriptors)
    for i, features in enumerate(descriptors.values()):
        with torch.no_grad():
            alone = model(frame_features=torch.from_numpy(features)[None])
        torch.testing.assert_close(batched.video_embeds[i], alone.video_embeds[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched.frame_embeds[i], alone.frame_embeds[0], atol=1e-5, rtol=1e-5)
    baseline = embed_descriptors(None, descriptors, progress=False)
    for i, features in enumerate(descriptors.values()):
        mean = features.astype(np.float64).mean(0)
        np.testing.assert_allclose(baseline.video_embeds[i].numpy(), mean / np.linalg.norm(mean), atol=1e-6)
        np.testing.assert_array_equal(baseline.frame_embeds[i].numpy(), features)  # raw descriptors


def test_embed_folder_streams_in_chunks(tmp_path, tiny_model):
    model, _ = tiny_model
    descriptors, _ = tiny_collection(seed=2)
    features = write_descriptors(tmp_path / "features", descriptors, shard_size=5)
    wanted = [k for k in descriptors if k != "d0"]
    streamed = tca_eval.embed_folder(model, features, set(wanted), chunk_videos=4, progress=False)
    assert sorted(streamed.ids) == sorted(wanted)
    stored = {k: v.astype(np.float16).astype(np.float32) for k, v in descriptors.items() if k in set(wanted)}
    reference = embed_descriptors(model, stored, progress=False).subset(streamed.ids)
    torch.testing.assert_close(streamed.video_embeds, reference.video_embeds, atol=1e-5, rtol=1e-5)
    for a, b in zip(streamed.frame_embeds, reference.frame_embeds):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_similarity_kinds_against_naive_loops():
    descriptors, _ = tiny_collection()
    emb = embed_descriptors(None, descriptors, progress=False)
    queries, database = (
        emb.subset(["q0", "q1"]),
        emb.subset([k for k in descriptors if not k.startswith("q")]),
    )
    frames_q = [descriptors[k] for k in queries.ids]
    frames_d = [descriptors[k] for k in database.ids]
    chamfer = compute_similarities(queries, database, "chamfer").numpy()
    symmetric = compute_similarities(queries, database, "symmetric_chamfer").numpy()
    cosine = compute_similarities(queries, database, "cosine").numpy()
    for i, x in enumerate(frames_q):
        for j, y in enumerate(frames_d):
            assert chamfer[i, j] == pytest.approx(naive_chamfer(x, y), abs=1e-5)
            assert symmetric[i, j] == pytest.approx((naive_chamfer(x, y) + naive_chamfer(y, x)) / 2, abs=1e-5)
            mx, my = x.mean(0), y.mean(0)
            assert cosine[i, j] == pytest.approx(mx @ my / np.linalg.norm(mx) / np.linalg.norm(my), abs=1e-5)
    # cascade: full depth == chamfer; depth 2 re-scores exactly the 2 best by cosine
    full = compute_similarities(queries, database, "cascade", cascade_depth=len(database)).numpy()
    np.testing.assert_allclose(full, chamfer, atol=1e-6)
    shallow = compute_similarities(queries, database, "cascade", cascade_depth=2).numpy()
    for i in range(len(queries)):
        top = set(np.argsort(-cosine[i], kind="stable")[:2])
        for j in range(len(database)):
            expected = chamfer[i, j] if j in top else cosine[i, j] - CASCADE_OFFSET
            assert shallow[i, j] == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="frame embeddings"):
        compute_similarities(VideoEmbeddings(["a"], torch.ones(1, DIM)), database, "chamfer")


@pytest.mark.parametrize("similarity", ["chamfer", "cosine"])
def test_cli_end_to_end_on_custom_fivr_annotation(tmp_path, tiny_model, similarity, capsys):
    model, model_path = tiny_model
    descriptors, fivr = tiny_collection(seed=1)
    features = write_descriptors(tmp_path / "features", descriptors, shard_size=4)
    annotation = tmp_path / "tiny_fivr.json"
    annotation.write_text(json.dumps(fivr))
    argv = [
        "--benchmark",
        "fivr",
        "--annotations",
        str(annotation),
        "--version",
        "tiny",
        "--features",
        str(features),
        "--model",
        str(model_path),
        "--similarity",
        similarity,
        "--no-progress",
    ]
    assert eval_tca.main([*argv, "--output", str(tmp_path / "run1")]) == 0
    assert eval_tca.main([*argv, "--output", str(tmp_path / "run2")]) == 0
    out = capsys.readouterr().out
    assert "| DSVR |" in out
    result = json.loads((tmp_path / "run1" / "results.json").read_text())
    assert result == json.loads((tmp_path / "run2" / "results.json").read_text())  # deterministic
    # independent reference: each video alone through the model (float16 as stored), naive similarity
    queries, database = fivr["versions"]["tiny"]["queries"], fivr["versions"]["tiny"]["database"]
    alone = {}
    for video, feats in descriptors.items():
        with torch.no_grad():
            out = model(frame_features=torch.from_numpy(feats.astype(np.float16).astype(np.float32))[None])
        alone[video] = out
    sims = {}
    for q in queries:
        sims[q] = {}
        for d in database:
            if similarity == "chamfer":
                sims[q][d] = naive_chamfer(alone[q].frame_embeds[0].numpy(), alone[d].frame_embeds[0].numpy())
            else:
                sims[q][d] = float(alone[q].video_embeds[0] @ alone[d].video_embeds[0])
    expected = evaluate_fivr(sims, fivr, "tiny")
    assert result["metrics"] == pytest.approx(expected["metrics"], abs=1e-6)
    assert result["similarity"] == similarity and result["counts"]["database_missing"] == 0
    assert {r["metric_name"].split()[0] for r in result["eval_results"]} == {"DSVR", "CSVR", "ISVR"}
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "run1" / "ap_per_query.png")
    assert image.ndim == 3 and image.shape[0] > 100


def test_cli_counts_missing_videos_on_a_packaged_benchmark(tmp_path, tiny_model):
    """A few real CC_WEB_VIDEO ids with features: everything else is reported missing, not crashed on."""
    _, model_path = tiny_model
    data = load_benchmark("cc_web_video")
    rng = np.random.default_rng(0)
    query = data["queries"][0]
    labelled = [data["index"][int(p)] for p in list(data["ground_truth"][0])[:12]]
    ids = list(dict.fromkeys([query, *labelled]))
    descriptors = {v: rng.normal(size=(int(rng.integers(2, 6)), DIM)).astype(np.float32) for v in ids}
    features = write_descriptors(tmp_path / "features", descriptors)
    assert (
        eval_tca.main(
            [
                "--benchmark",
                "cc_web",
                "--features",
                str(features),
                "--model",
                "none",
                "--similarity",
                "cascade",
                "--cascade-depth",
                "5",
                "--output",
                str(tmp_path / "out"),
                "--no-progress",
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    counts = result["counts"]
    assert counts["queries_evaluated"] == 1 and counts["queries_missing"] == 23
    assert counts["database_missing"] == 13115 - len(ids)
    positives = {data["index"][int(p)] for p, label in data["ground_truth"][0].items() if label in "ESLMV"}
    assert counts["positives_missing"] == len(positives - set(ids))


def test_cli_errors_are_clear(tmp_path, capsys):
    # a usage error: exit 2, argparse style, before any work
    assert eval_tca.main(["--benchmark", "fivr", "--features", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "vidtempo-eval: error: --benchmark fivr" in err and "needs --annotation FILE and --version" in err
    # a runtime error: exit 1, one `error:` line naming the folder, no traceback
    missing = tmp_path / "nowhere"
    assert eval_tca.main(["--benchmark", "evve", "--features", str(missing), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(FileNotFoundError):  # --debug shows the traceback
        eval_tca.main(["--benchmark", "evve", "--features", str(missing), "--no-progress", "--debug"])


def test_bad_descriptors_are_skipped_and_reported(tmp_path, tiny_model, caplog):
    model, _ = tiny_model
    descriptors, fivr = tiny_collection(seed=3)
    broken = dict(descriptors)
    broken["d1"] = np.full_like(descriptors["d1"], np.nan)
    with pytest.raises(ValueError, match="'d1'.*NaN"):
        embed_descriptors(model, broken, progress=False)
    features = write_descriptors(tmp_path / "features", broken)
    annotation = tmp_path / "a.json"
    annotation.write_text(json.dumps(fivr))
    fivr_file = ["--benchmark", "fivr", "--annotations", str(annotation), "--version", "tiny"]
    argv = [*fivr_file, "--features", str(features), "--model", "none", "--output", str(tmp_path / "out")]
    assert eval_tca.main([*argv, "--no-progress"]) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    logged = [
        r for r in caplog.records if r.name == "vidtempo.evaluation.tca_eval" and "d1" in r.getMessage()
    ]
    assert len(logged) == 1 and logged[0].levelname == "WARNING"  # logged by the library, not printed
    assert (
        result["counts"]["videos_skipped_bad_descriptors"] == 1
        and result["skipped_videos"][0]["video_id"] == "d1"
    )
    assert result["counts"]["database_missing"] == 1  # the skipped video counts as missing, nothing else lost
    clean = {k: v for k, v in descriptors.items() if k != "d1"}
    sims = {}
    for q in fivr["versions"]["tiny"]["queries"]:
        mq = clean[q].astype(np.float16).astype(np.float64).mean(0)
        sims[q] = {}
        for d in fivr["versions"]["tiny"]["database"]:
            if d in clean:
                md = clean[d].astype(np.float16).astype(np.float64).mean(0)
                sims[q][d] = float(mq @ md / np.linalg.norm(mq) / np.linalg.norm(md))
    assert result["metrics"] == pytest.approx(evaluate_fivr(sims, fivr, "tiny")["metrics"], abs=1e-6)


def fivr5k_features(tmp_path, count=30):
    """Descriptors for a few real FIVR-5K ids: two queries and some of their labelled videos."""
    data = load_benchmark("fivr")
    queries = data["versions"]["5k"]["queries"][:2]
    database = set(data["versions"]["5k"]["database"])
    labelled = [v for q in queries for ids in data["annotation"][q].values() for v in ids if v in database]
    ids = list(dict.fromkeys([*queries, *labelled[:count]]))
    rng = np.random.default_rng(2)
    descriptors = {v: rng.normal(size=(int(rng.integers(2, 5)), DIM)).astype(np.float32) for v in ids}
    return write_descriptors(tmp_path / "features", descriptors), ids


def test_cli_protocol_and_annotation_options_are_recorded(tmp_path, capsys):
    features, ids = fivr5k_features(tmp_path)
    base = ["--benchmark", "fivr-5k", "--features", str(features), "--model", "none", "--no-progress"]
    assert eval_tca.main([*base, "--output", str(tmp_path / "default")]) == 0
    assert (
        eval_tca.main(
            [*base, "--output", str(tmp_path / "strict"), "--protocol", "strict", "--annotation", "official"]
        )
        == 0
    )
    default = json.loads((tmp_path / "default" / "results.json").read_text())
    strict = json.loads((tmp_path / "strict" / "results.json").read_text())
    assert default["protocol"]["variant"] == "reference" and default["protocol"]["missing"] == "drop"
    assert default["protocol"]["published_evaluator"] and default["annotation"] == "published"
    assert strict["protocol"] == {
        **strict["protocol"],
        "variant": "strict",
        "missing": "miss",
        "published_evaluator": False,
    }
    assert strict["annotation"] == "official"
    counts = default["counts"]
    database = set(load_benchmark("fivr")["versions"]["5k"]["database"])
    assert counts["queries_evaluated"] == 2 and counts["queries"] == 50
    assert counts["database_evaluated"] == len(set(ids) & database) and counts["database"] == 5000
    assert counts["positives_missing"] > 0
    # dropped (reference) vs counted as misses (strict): the strict mAP cannot be higher
    assert all(strict["metrics"][t] <= default["metrics"][t] for t in ("DSVR", "CSVR"))
    assert all(r["metric_config"] == "strict, missing=miss" for r in strict["eval_results"])
    assert all(r["metric_config"] == "reference" for r in default["eval_results"])
    out = capsys.readouterr().out
    assert "protocol=reference" in out and "protocol=strict, missing=miss  annotation=official" in out
    assert (
        eval_tca.main(["--benchmark", "evve", "--annotation", "official", "--features", str(features)]) == 2
    )


def test_cli_help_names_the_protocol_variants(capsys):
    with pytest.raises(SystemExit):
        eval_tca.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in (
        "--protocol {reference,strict}",
        "published TCA/ViSiL/DnS/S2VS evaluators",
        "4_160_Y",
        "'official'",
        "--missing {drop,miss}",
    ):
        assert phrase in text


def test_model_card_states_protocol_and_what_was_evaluated(tmp_path):
    from vidtempo.hub_cards import publish

    features, _ = fivr5k_features(tmp_path)
    assert (
        eval_tca.main(
            [
                "--benchmark",
                "fivr-5k",
                "--features",
                str(features),
                "--model",
                "none",
                "--no-progress",
                "--output",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    counts = result["counts"]
    card = publish.build_model_card(
        TCAConfig(input_size=DIM, hidden_size=DIM, num_attention_heads=2, intermediate_size=32), [result]
    )
    publish.check_card(card, [result])
    text = str(card)
    line = (
        f"- fivr-5k (cosine): protocol reference; 2/50 queries and {counts['database_evaluated']:,}/5,000 "
        f"database videos evaluated; {counts['positives_missing']:,} positives without features (dropped from "
        "the positives)"
    )
    assert line in text
    entries = publish.eval_results_from([result])
    assert {e.metric_config for e in entries} == {"reference"}
    assert entries[0].dataset_args == {
        "queries_evaluated": 2,
        "queries": 50,
        "database_evaluated": counts["database_evaluated"],
        "database": 5000,
        "positives_missing": counts["positives_missing"],
        "missing_mode": "drop",
    }
    front_matter = text.split("---\n")[1]
    assert "queries_evaluated: 2" in front_matter and "config: reference" in front_matter
    # the results JSON's entries are the card's: one builder of model-index entries
    from huggingface_hub import ModelCard

    parsed = ModelCard(text).data.eval_results
    assert sorted((e.metric_name, e.metric_value, e.metric_config) for e in parsed) == sorted(
        (e["metric_name"], e["metric_value"], e["metric_config"]) for e in result["eval_results"]
    )


HEAVY = ("torch", "transformers", "datasets", "faiss")


def test_eval_locvtp_flags_restate_the_library_defaults():
    from vidtempo.cli import eval_locvtp
    from vidtempo.modeling import grounding_scoring

    assert eval_locvtp.SCORE_MODES == grounding_scoring.SCORE_MODES
    assert eval_locvtp.DEFAULT_SCORE == grounding_scoring.DEFAULT_SCORE
    assert eval_locvtp.DEFAULT_THRESHOLDS == grounding_scoring.DEFAULT_THRESHOLDS


@pytest.mark.parametrize(
    "module, entry, prog",
    [
        ("vidtempo.cli.eval_tca", "main", "vidtempo-eval"),
        ("vidtempo.cli.eval_locvtp", "main", "vidtempo-eval-locvtp"),
        ("vidtempo.cli.index", "index_main", "vidtempo-index"),
        ("vidtempo.cli.search", "main", "vidtempo-search"),
        ("vidtempo.cli.publish", "main", "vidtempo-publish"),
        ("vidtempo.cli.demo", "main", "vidtempo-demo"),
        ("vidtempo.cli.demo_paper", "main", "vidtempo-demo-paper"),
        ("vidtempo.cli.ablation_locvtp", "main", "vidtempo-ablation-locvtp"),
    ],
)
def test_help_imports_no_heavy_module(module, entry, prog):
    script = (
        "import sys, importlib\n"
        f"main = getattr(importlib.import_module({module!r}), {entry!r})\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"usage: {prog}" in run.stdout
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stdout[-300:]


def test_locvtp_eval_module_still_runs_the_command():
    run = subprocess.run(
        [sys.executable, "-m", "vidtempo.evaluation.locvtp_eval", "--model", "m", "--output", "r.json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "nothing to evaluate" in run.stderr, run.stderr[-2000:]


def _calls(folders, match) -> list[str]:
    import ast
    from pathlib import Path

    root = Path(tca_eval.__file__).resolve().parents[1]
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and match(node.func):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_library_folders_never_print():
    """Only `cli/` prints: the library folders this command family uses log instead."""
    assert (
        _calls(
            ("evaluation", "search", "synthetic", "hub_cards"), lambda f: getattr(f, "id", None) == "print"
        )
        == []
    )


def test_files_are_written_atomically_by_the_one_mechanism():
    """No hand-written temporary + rename: `processing.atomic_files.write_atomically` is the one mechanism.
    (Publishing swaps a whole folder into place, which `write_atomically`, a file writer, does not do.)"""
    renames = _calls(
        ("evaluation", "search", "synthetic", "hub_cards", "benchmarks"),
        lambda f: getattr(f, "attr", None) in ("replace", "rename") and getattr(f.value, "id", None) == "os",
    )
    assert [r for r in renames if not r.startswith("hub_cards/publish.py")] == []
