"""vidtempo-eval's defaults against the published evaluators (the MKLab / TCA evaluation code that TCA, ViSiL,
DnS and S2VS share), re-stated here from their documented behaviour, not imported.

How that code computes AP. It scores every query that has features against every database video that has
features, in database order, into ``{query: {video: score}}``; ``all_db`` is the set of videos with features,
queries included. For each query it ranks the dict's videos with Python's stable sort by descending score
(ties keep the dict order), walks the ranking and sums (hits so far / rank) at each positive:

* FIVR: skip the query itself and videos outside ``all_db``; P = the task's labelled videos ∩ ``all_db``, so a
  query labelled for itself (eCrhXArKE24, IS) stays in P and is never found; AP = sum / |P|.
* CC_WEB_VIDEO: a video is its index position through ``vid2index``; the query is NOT skipped (its own ``E``
  label is a positive); a video is ranked when annotated for the query's set (always, in the * variants) and,
  in the clean variants, not excluded; |P| = the number of index ENTRIES labelled E/S/L/M/V (not excluded when
  clean), with features or not, so 4_160_Y (two entries) counts twice.
* EVVE: P = the event's positives ∩ ``all_db`` (positives without features dropped); ranks of results outside
  ``all_db`` are skipped; trapezoidal AP; mean over the queries with results.
"""

import warnings

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
    load_fivr_annotation,
)
from vidtempo.evaluation.degenerate import DegenerateScoresWarning

TASKS = {"DSVR": ("ND", "DS"), "CSVR": ("ND", "DS", "CS"), "ISVR": ("ND", "DS", "CS", "IS")}
CC_VARIANTS = {
    "cc_web": (False, False),
    "cc_web*": (True, False),
    "cc_web_c": (False, True),
    "cc_web*_c": (True, True),
}
TOLERANCE = 1e-9


# ---------------------------------------------------------------------------------------------- the reference


def stable_descending(res):
    return sorted(res, key=lambda video: res[video], reverse=True)  # sorted() is stable, reverse=True too


def reference_fivr(similarities, annotation, all_db, labels):
    aps = []
    for query, res in similarities.items():
        gt = {v for label in labels for v in annotation[query].get(label, [])} & all_db
        hits, rank, total = 0, 0, 0.0
        for video in stable_descending(res):
            if video == query or video not in all_db:
                continue
            rank += 1
            if video in gt:
                hits += 1
                total += hits / rank
        aps.append(total / len(gt))
    return sum(aps) / len(aps)


def reference_cc_web(similarities, data, all_videos, clean):
    vid2index = data["vid2index"]
    total, evaluated = 0.0, 0
    for number, query in enumerate(data["queries"]):
        if query not in similarities:
            continue
        labels = {int(k): v for k, v in data["ground_truth"][number].items()}
        excluded = set(data["excluded"][number])
        res = similarities[query]
        hits, rank, found = 0, 0, 0.0
        for video in stable_descending(res):
            position = vid2index[video]
            if (all_videos or position in labels) and not (clean and position in excluded):
                rank += 1
                if position in labels and labels[position] in "ESLMV":
                    hits += 1
                    found += hits / rank
        positives = sum(1 for k, v in labels.items() if v in "ESLMV" and not (clean and k in excluded))
        total += found / positives
        evaluated += 1
    return total / evaluated


def reference_evve(similarities, data, all_db):
    per_event = {name: [] for name in data["events"]}
    for name, event in data["events"].items():
        positives = set(event["positives"]) & all_db
        for query in event["queries"]:
            if query not in similarities:
                continue
            per_event[name].append(naive_evve_ap(stable_descending(similarities[query]), positives, all_db))
    everything = [ap for values in per_event.values() for ap in values]
    # per event: sum / number of the event's queries in all_db (= those with features)
    events = {
        name: sum(v) / len([q for q in data["events"][name]["queries"] if q in all_db])
        for name, v in per_event.items()
        if v
    }
    return sum(everything) / len(everything), events


# ---------------------------------------------------------------------------------------------- scenarios


def pipeline(queries, database, with_features, scores_for, order_rng=None):
    """The reference's inputs: scores of the queries with features against the database videos with features,
    in database order (or one shuffled order: the order the scores are given), and all_db."""
    asked = [q for q in queries if q in with_features]
    scored = [d for d in database if d in with_features]
    if order_rng is not None:
        scored = [scored[i] for i in order_rng.permutation(len(scored))]
    scores = scores_for(asked, scored)
    similarities = {q: dict(zip(scored, row)) for q, row in zip(asked, scores.tolist())}
    return similarities, set(asked) | set(scored)


def graded(relevance, asked, scored):
    column = {d: j for j, d in enumerate(scored)}
    out = np.zeros((len(asked), len(scored)))
    for i, q in enumerate(asked):
        for video, grade in relevance(q).items():
            if video in column:
                out[i, column[video]] = max(out[i, column[video]], grade)
    return out


SCENARIOS = ("random", "perfect", "reversed", "tied", "coarse_ties", "missing_queries", "missing_videos")


def scenario(kind, queries, database, relevance, seed, without=frozenset()):
    """(similarities, all_db) for one scenario; `relevance(q)` = {video: grade > 0} of a perfect ranking;
    the videos in `without` have no features."""
    rng = np.random.default_rng(seed)
    with_features = (set(queries) | set(database)) - without
    if kind == "missing_queries":
        with_features -= {q for q in queries if rng.random() < 0.3}
    if kind == "missing_videos":
        with_features -= {d for d in database if rng.random() < 0.1}

    def scores_for(asked, scored):
        shape = (len(asked), len(scored))
        if kind == "perfect":
            return graded(relevance, asked, scored)
        if kind == "reversed":
            return -graded(relevance, asked, scored)
        if kind == "tied":
            return np.full(shape, 0.25)
        if kind == "coarse_ties":  # a few score levels: positives tied with negatives
            return np.round(graded(relevance, asked, scored) * 0.2 + rng.random(shape), 1)
        if kind == "random":
            return rng.random(shape)
        return graded(relevance, asked, scored) + rng.normal(0, 1.0, shape)

    order_rng = np.random.default_rng(seed + 1) if kind in ("tied", "coarse_ties") else None
    return pipeline(queries, database, with_features, scores_for, order_rng)


def fivr_relevance(annotation):
    grades = {"ND": 4.0, "DS": 4.0, "CS": 3.0, "IS": 2.0}

    def relevance(q):
        out = {}
        for label, grade in grades.items():
            for v in annotation[q].get(label, []):
                out[v] = max(out.get(v, 0.0), grade)
        return out

    return relevance


def check_fivr(similarities, all_db, annotation_name, version, annotation):
    result = evaluate_fivr(similarities, annotation_name, version)
    assert result["protocol"]["variant"] == "reference" and result["protocol"]["published_evaluator"]
    worst = 0.0
    for task, labels in TASKS.items():
        worst = max(
            worst, abs(result["metrics"][task] - reference_fivr(similarities, annotation, all_db, labels))
        )
    assert worst <= TOLERANCE
    return result, worst


@pytest.mark.parametrize("kind", SCENARIOS)
def test_fivr_5k_defaults_match_the_reference(kind):
    annotation = load_benchmark("fivr")["annotation"]
    queries, database = benchmark_ids("fivr-5k")
    similarities, all_db = scenario(kind, queries, database, fivr_relevance(annotation), seed=11)
    result, _ = check_fivr(similarities, all_db, None, "5k", annotation)
    counts = result["counts"]
    assert counts["queries_evaluated"] == len(similarities)
    assert counts["database_evaluated"] == len(all_db & set(database))
    if kind == "tied":
        assert counts["queries_mostly_tied"] == len(similarities)


@pytest.mark.parametrize("kind", SCENARIOS)
def test_fivr_200k_defaults_match_the_reference(kind):
    """14 queries (eCrhXArKE24 among them; the other 86 without features) over their labelled videos and 1,000
    others (the rest of the 225,960 without features)."""
    annotation = load_benchmark("fivr")["annotation"]
    queries, database = benchmark_ids("fivr-200k")
    rng = np.random.default_rng(5)
    asked = set(queries[::8]) | {"eCrhXArKE24"}
    keep = {v for q in asked for ids in annotation[q].values() for v in ids} | set(queries)
    others = np.flatnonzero([d not in keep for d in database])
    keep |= {database[j] for j in rng.choice(others, 1000, replace=False)}
    similarities, all_db = scenario(
        kind,
        queries,
        [d for d in database if d in keep],
        fivr_relevance(annotation),
        seed=12,
        without=set(queries) - asked,
    )
    result, _ = check_fivr(similarities, all_db, None, "200k", annotation)
    assert result["counts"]["database_missing"] == len(database) - len(all_db & set(database))
    assert (result["counts"]["positives_missing"] > 0) == (kind == "missing_videos")


@pytest.mark.parametrize(
    ("annotation_name", "query"), [("published", "eCrhXArKE24"), ("official", "5MBA_7vDhII")]
)
def test_fivr_200k_complete_features_match_the_reference(annotation_name, query):
    """One query (eCrhXArKE24 is self-labelled; the official file labels 5MBA_7vDhII differently) against the
    whole 225,960-video database."""
    annotation = load_fivr_annotation(annotation_name)["annotation"]
    queries, database = benchmark_ids("fivr-200k")
    asked = [query]
    rng = np.random.default_rng(3)
    scores = graded(fivr_relevance(annotation), asked, database) + rng.normal(
        0, 1.5, (len(asked), len(database))
    )
    similarities = {q: dict(zip(database, row)) for q, row in zip(asked, scores.tolist())}
    result, _ = check_fivr(similarities, set(asked) | set(database), annotation_name, "200k", annotation)
    assert result["annotation"] == annotation_name and result["counts"]["queries_missing"] == 99


def cc_web_relevance(data):
    index = data["index"]
    truth = {q: data["ground_truth"][n] for n, q in enumerate(data["queries"])}

    def relevance(q):
        return {index[int(p)]: 1.0 for p, label in truth[q].items() if label in "ESLMV" and index[int(p)]}

    return relevance


@pytest.mark.parametrize("kind", SCENARIOS)
def test_cc_web_defaults_match_the_reference_in_all_four_variants(kind):
    data = load_benchmark("cc_web_video")
    queries, videos = benchmark_ids("cc_web")
    similarities, _ = scenario(kind, queries, videos, cc_web_relevance(data), seed=21)
    result = evaluate_cc_web(similarities)
    assert result["protocol"]["published_evaluator"]
    for variant, (all_videos, clean) in CC_VARIANTS.items():
        expected = reference_cc_web(similarities, data, all_videos, clean)
        assert abs(result["metrics"][variant] - expected) <= TOLERANCE, variant


@pytest.mark.parametrize("kind", SCENARIOS)
def test_evve_defaults_match_the_reference(kind):
    data = load_benchmark("evve")
    queries, database = benchmark_ids("evve")
    event_of = {q: name for name, event in data["events"].items() for q in event["queries"]}

    def relevance(q):
        return {p: 1.0 for p in data["events"][event_of[q]]["positives"]}

    similarities, all_db = scenario(kind, queries, database, relevance, seed=31)
    result = evaluate_evve(similarities)
    overall, per_event = reference_evve(similarities, data, all_db)
    assert abs(result["metrics"]["mAP"] - overall) <= TOLERANCE
    for name, value in per_event.items():
        assert abs(result["metrics"][f"mAP/{name}"] - value) <= TOLERANCE, name


def test_evve_results_outside_the_database_shift_no_rank():
    data = load_benchmark("evve")
    queries, database = benchmark_ids("evve")
    rng = np.random.default_rng(4)
    similarities = {
        q: {**{d: float(rng.random()) for d in database}, **{f"x{i}": float(rng.random()) for i in range(9)}}
        for q in queries[:40]
    }
    overall, _ = reference_evve(similarities, data, set(queries[:40]) | set(database))
    assert abs(evaluate_evve(similarities)["metrics"]["mAP"] - overall) <= TOLERANCE


# ---------------------------------------------------------------------------------------------- hand-worked


def test_hand_cc_web_query_ranked_against_itself_with_its_own_e_label():
    """Query 1_1_Y: its other positives at ranks 1..P-1, the query itself last. Reference: the query is ranked
    (rank N = the number of ranked videos) and is a positive: AP = ((P - 1) + P / N) / P. Strict: the query is
    neither ranked nor a positive: AP = 1."""
    data = load_benchmark("cc_web_video")
    queries, videos = benchmark_ids("cc_web")
    number = queries.index("1_1_Y")
    labels = {data["index"][int(p)]: label for p, label in data["ground_truth"][number].items()}
    positives = [v for v, label in labels.items() if label in "ESLMV"]
    assert "1_1_Y" in positives and len(positives) == sum(
        lab in "ESLMV" for lab in data["ground_truth"][number].values()
    )
    res = {v: (2.0 if v in positives else 1.0) for v in videos}
    res["1_1_Y"] = 0.0
    result = evaluate_cc_web({"1_1_Y": res})
    p = len(positives)
    annotated = len([v for v in labels if v])  # ranked in cc_web: the videos annotated for the set
    assert result["metrics"]["cc_web"] == pytest.approx(((p - 1) + p / annotated) / p, abs=1e-15)
    assert result["metrics"]["cc_web*"] == pytest.approx(((p - 1) + p / len(videos)) / p, abs=1e-15)
    strict = evaluate_cc_web({"1_1_Y": res}, protocol="strict")
    assert strict["metrics"]["cc_web"] == strict["metrics"]["cc_web*"] == 1.0
    assert strict["protocol"]["variant"] == "strict" and not strict["protocol"]["published_evaluator"]


def test_hand_cc_web_duplicated_index_entry_counts_twice():
    """Query 4_3_Y: 4_160_Y has two index entries, both S. All positive videos first: the reference finds
    P - 1 of its P entries: AP = (P - 1) / P; strict (each video once, query left out): AP = 1."""
    data = load_benchmark("cc_web_video")
    queries, videos = benchmark_ids("cc_web")
    number = queries.index("4_3_Y")
    entries = [int(p) for p, label in data["ground_truth"][number].items() if label in "ESLMV"]
    assert [data["index"][p] for p in entries].count("4_160_Y") == 2
    res = {v: 0.0 for v in videos}
    res.update({data["index"][p]: 1.0 for p in entries})
    result = evaluate_cc_web({"4_3_Y": res})
    p = len(entries)
    assert result["per_query"]["cc_web"]["4_3_Y"] == pytest.approx((p - 1) / p, abs=1e-15)
    assert evaluate_cc_web({"4_3_Y": res}, protocol="strict")["per_query"]["cc_web"]["4_3_Y"] == 1.0


def test_hand_fivr_self_labelled_query_stays_an_unretrievable_positive():
    """eCrhXArKE24 is IS for itself. A perfect ranking finds every other positive at ranks 1..P-1: reference
    ISVR AP = (P - 1) / P with P counting the query; strict AP = 1. DSVR/CSVR do not contain it: both 1."""
    annotation = load_benchmark("fivr")["annotation"]["eCrhXArKE24"]
    assert "eCrhXArKE24" in annotation["IS"]
    queries, database = benchmark_ids("fivr-5k")
    isvr = {v for label in ("ND", "DS", "CS", "IS") for v in annotation.get(label, [])}
    res = {d: fivr_relevance({"q": annotation})("q").get(d, 0.0) for d in database}
    p = len(isvr & (set(database) | {"eCrhXArKE24"}))
    result = evaluate_fivr({"eCrhXArKE24": res}, version="5k")
    assert result["per_query"]["ISVR"]["eCrhXArKE24"] == pytest.approx((p - 1) / p, abs=1e-15)
    assert result["per_query"]["DSVR"]["eCrhXArKE24"] == 1.0
    assert evaluate_fivr({"eCrhXArKE24": res}, version="5k", protocol="strict")["metrics"]["ISVR"] == 1.0


def test_hand_evve_positives_without_features_are_dropped_by_default():
    """One EVVE query, k of its P positives without features, the others ranked first (trapezoids of height 1):
    reference (drop) AP = 1; miss AP = (P - k) / P."""
    data = load_benchmark("evve")
    name, event = next(iter(data["events"].items()))
    query, positives = event["queries"][0], event["positives"]
    gone = set(positives[:3])
    res = {d: (1.0 if d in positives else 0.0) for d in data["database"] if d not in gone}
    result = evaluate_evve({query: res})
    assert result["per_query"]["mAP"][query] == 1.0
    assert result["counts"]["positives_missing"] == 3 and result["protocol"]["missing"] == "drop"
    missed = evaluate_evve({query: res}, missing="miss")["per_query"]["mAP"][query]
    assert missed == pytest.approx((len(positives) - 3) / len(positives), abs=1e-15)
    assert evaluate_evve({query: res}, protocol="strict")["per_query"]["mAP"][query] == missed


def test_hand_ties_keep_the_order_the_scores_are_given_in():
    """Three tied videos, one positive: AP = 1/r with r its place in each query's own dict order; most scores
    tied (positive among them): a warning, and the count in the results."""
    annotation = {
        "versions": {"t": {"queries": ["q1", "q2"], "database": ["a", "b", "c"]}},
        "annotation": {"q1": {"ND": ["b"]}, "q2": {"ND": ["b"]}},
    }
    sims = {"q1": {"a": 0.5, "b": 0.5, "c": 0.5}, "q2": {"c": 0.5, "a": 0.5, "b": 0.5}}
    with pytest.warns(DegenerateScoresWarning, match="2 of 2 queries"):
        result = evaluate_fivr(sims, annotation, "t")
    assert result["per_query"]["DSVR"] == {"q1": 0.5, "q2": 1 / 3}
    assert result["counts"]["queries_mostly_tied"] == 2
    # the same scores as a matrix rank in column order for both queries
    matrix = SimilarityMatrix(["q1", "q2"], ["a", "b", "c"], np.full((2, 3), 0.5))
    with pytest.warns(DegenerateScoresWarning):
        assert evaluate_fivr(matrix, annotation, "t")["per_query"]["DSVR"] == {"q1": 0.5, "q2": 0.5}
    # a clear ranking warns about nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateScoresWarning)
        clear = evaluate_fivr({"q1": {"a": 0.1, "b": 0.9, "c": 0.2}}, annotation, "t")
    assert clear["counts"]["queries_mostly_tied"] == 0


def test_official_annotation_differs_from_the_published_one_as_documented():
    published = load_fivr_annotation()["annotation"]
    official = load_fivr_annotation("official")["annotation"]
    differing = {
        task: sum(
            1
            for q in published
            if {v for lab in labels for v in published[q].get(lab, [])}
            != {v for lab in labels for v in official[q].get(lab, [])}
        )
        for task, labels in TASKS.items()
    }
    assert differing == {"DSVR": 1, "CSVR": 4, "ISVR": 22}
    database = set(benchmark_ids("fivr-200k")[1])
    assert all(v in database for q in published for v in published[q].get("DA", []))  # ids, not label names
    # inside the database they differ for one query (DSVR, CSVR), the rest concerns videos outside it
    inside = {
        task: [
            q
            for q in published
            if database
            & (
                {v for lab in labels for v in published[q].get(lab, [])}
                ^ {v for lab in labels for v in official[q].get(lab, [])}
            )
        ]
        for task, labels in TASKS.items()
    }
    assert {task: len(q) for task, q in inside.items()} == {"DSVR": 1, "CSVR": 1, "ISVR": 0}
    # a ranking perfect for the official file is perfect for it (strict) and not for the published one
    queries = inside["DSVR"] + benchmark_ids("fivr-200k")[0][:3]
    ordered = sorted(database)
    scores = graded(fivr_relevance(official), queries, ordered)
    sims = SimilarityMatrix(queries, ordered, scores)
    on_official = evaluate_benchmark("fivr-200k", sims, annotation="official", protocol="strict")
    assert on_official["metrics"] == {"DSVR": 1.0, "CSVR": 1.0, "ISVR": 1.0}
    assert on_official["annotation"] == "official" and on_official["benchmark"] == "fivr-200k"
    on_published = evaluate_benchmark("fivr-200k", sims, protocol="strict")
    assert on_published["metrics"]["DSVR"] < 1.0 and on_published["annotation"] == "published"
    with pytest.raises(ValueError, match="FIVR only"):
        evaluate_benchmark("evve", {}, annotation="official")
