"""FIVR / CC_WEB_VIDEO / EVVE protocols on the REAL annotation files with synthetic similarities:
perfect rankings, hand-computed permutations, and naive loop re-implementations of the STRICT variant with
missing videos (the reference variant, the published evaluators, is checked in test_eval_reference.py)."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from factories import naive_evve_ap

from vidtempo.evaluation.benchmarks import (
    SimilarityMatrix,
    benchmark_ids,
    evaluate_benchmark,
    evaluate_cc_web,
    evaluate_evve,
    evaluate_fivr,
    load_benchmark,
)

SHARED = Path("/work/shared/benchmarks")
POSITIVE = "ESLMV"


def ranked_scores(order_ids, database_ids):
    """Scores giving `order_ids` ranks 1, 2, ... and every other database video a lower, random score."""
    rng = np.random.default_rng(1)
    score = {d: -1.0 - rng.random() for d in database_ids}
    for rank, video in enumerate(order_ids):
        score[video] = 10.0 - rank * 1e-3
    return np.array([score[d] for d in database_ids])


# ---------------------------------------------------------------------------------------------- files


@pytest.mark.skipif(not SHARED.exists(), reason="shared benchmark folder not present")
@pytest.mark.parametrize("name", ["fivr", "fivr200k_official_annotation", "cc_web_video", "evve", "vcdb"])
def test_packaged_annotations_equal_shared_files(name):
    packaged = Path(__file__).resolve().parents[2] / "evaluation" / "data" / f"{name}.json.gz"
    with gzip.open(packaged, "rt") as handle:
        assert json.load(handle) == json.loads((SHARED / f"{name}.json").read_text())
    key = "fivr200k_official" if name.startswith("fivr200k") else name
    assert load_benchmark(key) is load_benchmark(key)  # cached


def test_benchmark_sizes():
    assert [len(x) for x in benchmark_ids("fivr-5k")] == [50, 5000]
    assert [len(x) for x in benchmark_ids("fivr-200k")] == [100, 225960]
    assert [len(x) for x in benchmark_ids("cc_web")] == [24, 13115]  # 10 empty + 5 duplicated index entries
    assert [len(x) for x in benchmark_ids("evve")] == [620, 2373]


# ---------------------------------------------------------------------------------------------- FIVR


def fivr_graded(queries, database, annotation):
    grade = {"ND": 4.0, "DS": 4.0, "CS": 3.0, "IS": 2.0}
    scores = np.zeros((len(queries), len(database)))
    column = {d: j for j, d in enumerate(database)}
    for i, q in enumerate(queries):
        for label, ids in annotation[q].items():
            for v in ids:
                if v in column and label in grade:
                    scores[i, column[v]] = max(scores[i, column[v]], grade[label])
    return scores


@pytest.mark.parametrize("version", ["5k", "200k"])
def test_fivr_perfect_ranking_is_one(version):
    data = load_benchmark("fivr")
    queries, database = benchmark_ids(f"fivr-{version}")
    scores = fivr_graded(queries, database, data["annotation"])
    sims = SimilarityMatrix(queries, database, scores)
    result = evaluate_benchmark(f"fivr-{version}", sims, protocol="strict")
    assert result["metrics"] == {"DSVR": 1.0, "CSVR": 1.0, "ISVR": 1.0}
    assert result["counts"]["queries_evaluated"] == len(queries)
    assert result["counts"]["database_missing"] == 0 and result["counts"]["positives_missing"] == 0
    # reference: eCrhXArKE24 is an ISVR positive of itself that is never retrieved: AP = (P - 1) / P
    result = evaluate_benchmark(f"fivr-{version}", sims)
    labelled = {
        v for label in ("ND", "DS", "CS", "IS") for v in data["annotation"]["eCrhXArKE24"].get(label, [])
    }
    p = len(labelled & (set(database) | {"eCrhXArKE24"}))
    assert result["metrics"]["ISVR"] == pytest.approx(1 - 1 / p / len(queries), abs=1e-15)
    assert result["metrics"]["DSVR"] == result["metrics"]["CSVR"] == 1.0


def test_fivr_alternating_ranking_is_one_half():
    data = load_benchmark("fivr")
    queries, database = benchmark_ids("fivr-5k")
    rows, database_set = [], set(database)
    for q in queries:
        positives = [
            v
            for v in data["annotation"][q].get("ND", []) + data["annotation"][q].get("DS", [])
            if v in database_set and v != q
        ]
        positive_set = set(positives)
        negatives = [v for v in database if v not in positive_set and v != q]
        order = [x for pair in zip(negatives, positives) for x in pair]  # positives at ranks 2, 4, 6, ...
        rows.append(ranked_scores(order, database))
    result = evaluate_fivr((queries, database, np.stack(rows)), version="5k", protocol="strict")
    assert result["metrics"]["DSVR"] == pytest.approx(0.5)
    # reversed: the positives at the very bottom of the ranking, AP = mean_i i / (D' - P + i)
    rows, expected = [], []
    for q in queries:
        positives = {
            v for v in data["annotation"][q].get("ND", []) + data["annotation"][q].get("DS", [])
        } & set(database)
        positives.discard(q)
        order = [v for v in database if v not in positives and v != q] + sorted(positives)
        rows.append(ranked_scores(order, database))
        n, p = len(order), len(positives)
        expected.append(np.mean([i / (n - p + i) for i in range(1, p + 1)]))
    result = evaluate_fivr((queries, database, np.stack(rows)), version="5k", protocol="strict")
    assert result["metrics"]["DSVR"] == pytest.approx(np.mean(expected), rel=1e-12)


def naive_fivr(similarities, data, version, labels, missing):
    """ViSiL-style loop: rank the scored database videos except the query; P = positives present
    (missing='drop') or all positives in the version's database (missing='miss')."""
    database = set(data["versions"][version]["database"])
    present = {v for res in similarities.values() for v in res} & database
    aps = []
    for q in data["versions"][version]["queries"]:
        if q not in similarities:
            continue
        gt = {v for label in labels for v in data["annotation"][q].get(label, [])} & database
        gt.discard(q)
        positives = gt & present if missing == "drop" else gt
        if not positives:
            continue
        res = similarities[q]
        i = ri = 0
        s = 0.0
        for video in sorted(res, key=lambda x: -res[x]):
            if video != q and video in database:
                ri += 1
                if video in gt:
                    i += 1
                    s += i / ri
        aps.append(s / len(positives))
    return float(np.mean(aps))


@pytest.mark.parametrize("missing", ["drop", "miss"])
def test_fivr_matches_naive_loop_with_missing_videos(missing):
    data = load_benchmark("fivr")
    queries, database = benchmark_ids("fivr-5k")
    rng = np.random.default_rng(3)
    present = [d for d in database if rng.random() > 0.1] + ["not_a_fivr_video"]
    asked = queries[2:]  # two queries without features
    scores = fivr_graded(asked, present, data["annotation"]) + rng.normal(0, 1.5, (len(asked), len(present)))
    similarities = {q: dict(zip(present, row)) for q, row in zip(asked, scores.tolist())}
    result = evaluate_fivr(similarities, version="5k", missing=missing, protocol="strict")
    for task, labels in {
        "DSVR": ["ND", "DS"],
        "CSVR": ["ND", "DS", "CS"],
        "ISVR": ["ND", "DS", "CS", "IS"],
    }.items():
        assert result["metrics"][task] == pytest.approx(naive_fivr(similarities, data, "5k", labels, missing))
    counts = result["counts"]
    assert counts["queries_missing"] == 2 and result["missing_queries"] == queries[:2]
    assert counts["database_missing"] == len(set(database) - set(present))
    expected_missing_positives = {
        v
        for q in asked
        for label in ("ND", "DS", "CS", "IS")
        for v in data["annotation"][q].get(label, [])
        if v in set(database) and v not in set(present) and v != q
    }
    assert counts["positives_missing"] == len(expected_missing_positives) > 0


def test_fivr_custom_annotation_query_inside_its_database(tmp_path):
    annotation = {
        "versions": {"tiny": {"queries": ["q"], "database": ["q", "a", "b", "c", "d"]}},
        "annotation": {"q": {"ND": ["a"], "DS": ["q"], "CS": ["c"], "DA": ["b"]}},
    }
    # the query scores itself highest; it is never ranked. Strict: nor its own positive:
    # ranking b, a, d, c -> DSVR: a at 2 -> 1/2; CSVR: a at 2, c at 4 -> (1/2 + 2/4)/2
    # reference: q stays a positive that is never retrieved -> DSVR (1/2)/2, CSVR (1/2 + 2/4)/3
    sims = {"q": {"q": 1.0, "a": 0.5, "b": 0.9, "c": 0.1, "d": 0.2}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(annotation))
    for source in (annotation, path):
        result = evaluate_fivr(sims, annotation=source, version="tiny", protocol="strict")
        assert result["metrics"] == pytest.approx({"DSVR": 0.5, "CSVR": 0.5, "ISVR": 0.5})
        result = evaluate_fivr(sims, annotation=source, version="tiny")
        assert result["metrics"] == pytest.approx({"DSVR": 0.25, "CSVR": 1 / 3, "ISVR": 1 / 3}, abs=1e-15)
        assert result["annotation"] == "custom" and result["protocol"]["variant"] == "reference"
    result = evaluate_benchmark("fivr", sims, annotation=str(path), version="tiny", protocol="strict")
    assert result["metrics"]["CSVR"] == pytest.approx(0.5)


def test_fivr_bad_annotation_errors(tmp_path):
    with pytest.raises(ValueError, match="label 'XX'"):
        evaluate_fivr(
            {}, {"versions": {"v": {"queries": [], "database": []}}, "annotation": {"q": {"XX": []}}}, "v"
        )
    with pytest.raises(ValueError, match="missing field 'database'"):
        evaluate_fivr({}, {"versions": {"v": {"queries": []}}, "annotation": {}}, "v")
    with pytest.raises(ValueError, match="no version 'nope'"):
        evaluate_fivr({}, version="nope")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        evaluate_fivr({}, bad, "v")
    with pytest.raises(ValueError, match="duplicate database ids"):
        SimilarityMatrix(["q"], ["a", "a"], np.zeros((1, 2)))


# ---------------------------------------------------------------------------------------------- CC_WEB


def naive_cc_web(similarities, data, whole_dataset, clean, missing="miss"):
    """DML/ViSiL-style loop over the raw file (index positions), the query left out of its ranking."""
    index = data["index"]
    present = {v for res in similarities.values() for v in res}
    aps = []
    for number, query in enumerate(data["queries"]):
        if query not in similarities:
            continue
        labels = {
            index[int(k)]: label.upper() for k, label in data["ground_truth"][number].items() if index[int(k)]
        }
        excluded = {index[k] for k in data["excluded"][number]}
        positives = {v for v, label in labels.items() if label in POSITIVE} - {query}
        if clean:
            positives -= excluded
        res = similarities[query]
        i = ri = 0
        s = 0.0
        for video in sorted(res, key=lambda x: -res[x]):
            if video == query:
                continue
            if (whole_dataset or video in labels) and (not clean or video not in excluded):
                ri += 1
                if video in positives:
                    i += 1
                    s += i / ri
        aps.append(s / len(positives & present if missing == "drop" else positives))
    return float(np.mean(aps))


def cc_web_scores(data, queries, videos, rng, noise):
    index = data["index"]
    scores = (
        rng.normal(0, noise, (len(queries), len(videos))) if noise else np.zeros((len(queries), len(videos)))
    )
    column = {v: j for j, v in enumerate(videos)}
    for number, truth in enumerate(data["ground_truth"]):
        for position, label in truth.items():
            if index[int(position)] and label in POSITIVE:
                scores[number, column[index[int(position)]]] += 1.0
        scores[number, column[queries[number]]] = 5.0  # the query finds itself first
    return scores


def test_cc_web_perfect_ranking_is_one():
    data = load_benchmark("cc_web_video")
    queries, videos = benchmark_ids("cc_web")
    scores = cc_web_scores(data, queries, videos, np.random.default_rng(0), 0.0)
    result = evaluate_cc_web((queries, videos, scores), protocol="strict")
    assert result["metrics"] == {"cc_web": 1.0, "cc_web*": 1.0, "cc_web_c": 1.0, "cc_web*_c": 1.0}
    # reference: 4_160_Y (two index entries, both S for query 4_3_Y) counts twice but is found once
    result = evaluate_cc_web((queries, videos, scores))
    number = queries.index("4_3_Y")
    p = sum(label in POSITIVE for label in data["ground_truth"][number].values())
    for variant, value in result["metrics"].items():
        assert value == pytest.approx(1 - 1 / p / len(queries), abs=1e-15), variant


def test_cc_web_excluded_videos_on_top_only_hurt_unclean_variants():
    data = load_benchmark("cc_web_video")
    queries, videos = benchmark_ids("cc_web")
    scores = cc_web_scores(data, queries, videos, np.random.default_rng(0), 0.0)
    column = {v: j for j, v in enumerate(videos)}
    for number, excluded in enumerate(data["excluded"]):
        for position in excluded:
            scores[number, column[data["index"][position]]] = 3.0
    result = evaluate_cc_web((queries, videos, scores), protocol="strict")
    assert result["metrics"]["cc_web_c"] == 1.0 and result["metrics"]["cc_web*_c"] == 1.0
    assert result["metrics"]["cc_web*"] < 1.0
    similarities = SimilarityMatrix(queries, videos, scores).to_dict()
    for variant, (whole, clean) in {"cc_web": (False, False), "cc_web*": (True, False)}.items():
        assert result["metrics"][variant] == pytest.approx(naive_cc_web(similarities, data, whole, clean))


def test_cc_web_stray_lower_case_x_is_a_negative():
    data = load_benchmark("cc_web_video")
    queries, videos = benchmark_ids("cc_web")
    [(number, position)] = [
        (n, p) for n, t in enumerate(data["ground_truth"]) for p, label in t.items() if label == "x"
    ]
    scores = cc_web_scores(data, queries, videos, np.random.default_rng(0), 0.0)
    scores[number, videos.index(data["index"][int(position)])] = 4.0  # above every positive of its query
    result = evaluate_cc_web((queries, videos, scores), protocol="strict")
    query = queries[number]
    num_positives = (
        sum(label in POSITIVE for label in data["ground_truth"][number].values()) - 1
    )  # minus the query
    # one negative at rank 1, then the P positives at ranks 2..P+1
    expected = np.mean([i / (i + 1) for i in range(1, num_positives + 1)])
    assert result["per_query"]["cc_web"][query] == pytest.approx(expected)


@pytest.mark.parametrize("missing", ["miss", "drop"])
def test_cc_web_matches_naive_loop_with_missing_videos(missing):
    data = load_benchmark("cc_web_video")
    queries, videos = benchmark_ids("cc_web")
    rng = np.random.default_rng(5)
    scores = cc_web_scores(data, queries, videos, rng, 0.7)
    keep = rng.random(len(videos)) > 0.15
    keep[[videos.index(q) for q in queries]] = True
    present = [v for v, k in zip(videos, keep) if k]
    similarities = {q: dict(zip(present, row[keep].tolist())) for q, row in zip(queries[1:], scores[1:])}
    result = evaluate_benchmark("cc_web", similarities, missing=missing, protocol="strict")
    for variant, (whole, clean) in {
        "cc_web": (False, False),
        "cc_web*": (True, False),
        "cc_web_c": (False, True),
        "cc_web*_c": (True, True),
    }.items():
        assert result["metrics"][variant] == pytest.approx(
            naive_cc_web(similarities, data, whole, clean, missing)
        )
    assert result["counts"]["queries_missing"] == 1
    assert result["counts"]["database_missing"] == int((~keep).sum())


# ---------------------------------------------------------------------------------------------- EVVE


def evve_positive_scores(data, queries, database, rng, noise):
    scores = (
        rng.normal(0, noise, (len(queries), len(database)))
        if noise
        else np.zeros((len(queries), len(database)))
    )
    row, column = {q: i for i, q in enumerate(queries)}, {d: j for j, d in enumerate(database)}
    for event in data["events"].values():
        for q in event["queries"]:
            for p in event["positives"]:
                scores[row[q], column[p]] += 1.0
    return scores


def naive_evve(similarities, data, all_db):
    """ViSiL's EVVE loop: ranks shifted past results that are not in the database; trapezoidal AP."""
    per_event = {}
    for name, event in data["events"].items():
        positives = set(event["positives"]) & set(data["database"])
        for q in event["queries"]:
            if q not in similarities:
                continue
            res = similarities[q]
            ap = naive_evve_ap(sorted(res, key=lambda x: -res[x]), positives, all_db)
            per_event.setdefault(name, []).append(ap)
    return float(np.mean([x for v in per_event.values() for x in v])), {
        k: float(np.mean(v)) for k, v in per_event.items()
    }


def test_evve_perfect_and_alternating_rankings():
    data = load_benchmark("evve")
    queries, database = benchmark_ids("evve")
    scores = evve_positive_scores(data, queries, database, np.random.default_rng(0), 0.0)
    result = evaluate_evve((queries, database, scores))
    assert result["metrics"]["mAP"] == 1.0
    assert all(result["metrics"][f"mAP/{name}"] == 1.0 for name in data["events"])
    # positives at 0-based ranks 1, 3, 5, ...: the n-th adds ((n / (2n + 1)) + 1/2) / 2 / P
    rows, expected = [], []
    for q in queries:
        [event] = [e for e in data["events"].values() if q in e["queries"]]
        positive_set = set(event["positives"])
        negatives = [d for d in database if d not in positive_set]
        order = [x for pair in zip(negatives, event["positives"]) for x in pair]
        rows.append(ranked_scores(order, database))
        p = len(event["positives"])
        expected.append(sum((n / (2 * n + 1) + 0.5) / 2 for n in range(p)) / p)
    result = evaluate_evve((queries, database, np.stack(rows)))
    assert result["metrics"]["mAP"] == pytest.approx(np.mean(expected), rel=1e-12)


def test_evve_matches_naive_loop_with_missing_and_foreign_videos():
    data = load_benchmark("evve")
    queries, database = benchmark_ids("evve")
    rng = np.random.default_rng(7)
    scores = evve_positive_scores(data, queries, database, rng, 0.8)
    keep = rng.random(len(database)) > 0.1
    present = [d for d, k in zip(database, keep) if k]
    foreign = [f"extra{i}" for i in range(20)]  # results outside the database shift no rank
    similarities = {
        q: {
            **dict(zip(present, row[keep].tolist())),
            **{f: float(v) for f, v in zip(foreign, rng.normal(0.5, 1, 20))},
        }
        for q, row in zip(queries[3:], scores[3:])
    }
    result = evaluate_evve(similarities, missing="miss")
    overall, per_event = naive_evve(similarities, data, set(database))
    assert result["metrics"]["mAP"] == pytest.approx(overall)
    for name, value in per_event.items():
        assert result["metrics"][f"mAP/{name}"] == pytest.approx(value)
    assert result["counts"]["queries_missing"] == 3 and result["counts"]["database_missing"] == int(
        (~keep).sum()
    )
