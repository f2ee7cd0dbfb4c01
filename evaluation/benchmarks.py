"""The FIVR, CC_WEB_VIDEO and EVVE protocols (METHODS.md §1.5) on similarities or embeddings.

Every evaluator takes similarities in one of three forms:

* ``{query_id: {database_id: score}}`` (the form of the benchmarks' own evaluation code);
* a :class:`SimilarityMatrix` (query ids, database ids, scores ``[Q, D]``; NaN = pair not scored);
* a tuple ``(query_ids, database_ids, scores)``.

Rules shared by all protocols: the query is never ranked against itself (and is not one of its own
positives); database ids the benchmark does not know are ignored (EVVE: "ranks shifted for videos that
are not in the database"); ties keep the order of the user's database ids. Queries without scores are
skipped and counted. Database videos without scores ("missing", e.g. failed downloads) are handled per
``missing``: ``"drop"`` removes them from the benchmark (positives counted only among videos present:
FIVR's evaluation code, which passes the set of videos with features as ``all_db``), ``"miss"`` keeps
them as positives that were never retrieved (the CC_WEB_VIDEO and EVVE code, which count every
annotated positive). Each report counts the missing queries, database videos and positives.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .ap import average_precision, evve_average_precision

BENCHMARK_FILES = {
    "fivr": "fivr.json.gz",
    "cc_web_video": "cc_web_video.json.gz",
    "evve": "evve.json.gz",
    "vcdb": "vcdb.json.gz",
}
FIVR_LABELS = ("ND", "DS", "CS", "IS", "DA")
FIVR_TASKS = {"DSVR": ("ND", "DS"), "CSVR": ("ND", "DS", "CS"), "ISVR": ("ND", "DS", "CS", "IS")}
CC_WEB_POSITIVE = frozenset("ESLMV")
CC_WEB_LABELS = frozenset("ESLMVX")
CC_WEB_VARIANTS = {  # name -> (rank the whole dataset, drop the excluded videos)
    "cc_web": (False, False),
    "cc_web*": (True, False),
    "cc_web_c": (False, True),
    "cc_web*_c": (True, True),
}
MISSING_MODES = ("drop", "miss")


# ----------------------------------------------------------------------------------------------------
# Annotation files
# ----------------------------------------------------------------------------------------------------


def _read_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"annotation file not found: {path}") from None
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a valid JSON (or gzipped JSON) annotation file: {error}") from None


@functools.cache
def _load_packaged(name: str) -> dict:
    data = resources.files("vidtempo.evaluation").joinpath("data", BENCHMARK_FILES[name])
    with resources.as_file(data) as path:
        return _read_json(path)


def load_benchmark(name: str) -> dict:
    """The packaged annotation of `name` (fivr, cc_web_video, evve, vcdb) as parsed JSON (schema in
    ``benchmarks/README.md``). The result is cached and shared: do not modify it."""
    if name not in BENCHMARK_FILES:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {sorted(BENCHMARK_FILES)}")
    return _load_packaged(name)


def _require(mapping, key: str, kind: type, where: str):
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise ValueError(f"{where}: missing field {key!r}")
    value = mapping[key]
    if not isinstance(value, kind):
        raise ValueError(f"{where}: field {key!r} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def load_fivr_annotation(source: str | os.PathLike | Mapping | None = None) -> dict:
    """A FIVR-schema annotation, validated: the packaged FIVR (``None``), a JSON file, or a dict
    ``{"versions": {name: {"queries": [...], "database": [...]}}, "annotation": {q: {label: [...]}}}``."""
    where = "FIVR annotation" if source is None or isinstance(source, Mapping) else str(source)
    if source is None:
        data = load_benchmark("fivr")
    elif isinstance(source, Mapping):
        data = source
    else:
        data = _read_json(source)
    versions = _require(data, "versions", Mapping, where)
    annotation = _require(data, "annotation", Mapping, where)
    for name, version in versions.items():
        for field in ("queries", "database"):
            _require(version, field, list, f"{where}: versions[{name!r}]")
    for query, labels in annotation.items():
        if not isinstance(labels, Mapping):
            raise ValueError(f"{where}: annotation[{query!r}] must map labels to id lists")
        for label, ids in labels.items():
            if label not in FIVR_LABELS:
                raise ValueError(f"{where}: annotation[{query!r}] has label {label!r}; expected {FIVR_LABELS}")
            if not isinstance(ids, list):
                raise ValueError(f"{where}: annotation[{query!r}][{label!r}] must be a list of ids")
    return data


# ----------------------------------------------------------------------------------------------------
# Similarities
# ----------------------------------------------------------------------------------------------------


@dataclass
class SimilarityMatrix:
    """Scores of `query_ids` against `database_ids`: `scores[i, j]` (NaN = not scored)."""

    query_ids: list[str]
    database_ids: list[str]
    scores: np.ndarray  # [Q, D]

    def __post_init__(self) -> None:
        self.query_ids = [str(q) for q in self.query_ids]
        self.database_ids = [str(d) for d in self.database_ids]
        self.scores = np.asarray(self.scores, dtype=np.float64)
        expected = (len(self.query_ids), len(self.database_ids))
        if self.scores.shape != expected:
            raise ValueError(f"similarity scores must have shape {expected} (queries, database), got "
                             f"{self.scores.shape}")
        for name, ids in (("query", self.query_ids), ("database", self.database_ids)):
            if len(set(ids)) != len(ids):
                raise ValueError(f"similarities: duplicate {name} ids")

    @classmethod
    def from_dict(cls, similarities: Mapping[str, Mapping[str, float]]) -> SimilarityMatrix:
        """From ``{query: {database_id: score}}``; pairs absent from the dict are NaN."""
        database_ids: dict[str, int] = {}
        for query, row in similarities.items():
            if not isinstance(row, Mapping):
                raise ValueError(f"similarities[{query!r}] must be a dict database_id -> score")
            for video in row:
                database_ids.setdefault(str(video), len(database_ids))
        scores = np.full((len(similarities), len(database_ids)), np.nan)
        for i, row in enumerate(similarities.values()):
            if row:
                columns = np.fromiter((database_ids[str(v)] for v in row), dtype=np.int64, count=len(row))
                scores[i, columns] = np.fromiter(row.values(), dtype=np.float64, count=len(row))
        return cls(list(similarities), list(database_ids), scores)

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {
            q: {d: float(s) for d, s in zip(self.database_ids, row) if not np.isnan(s)}
            for q, row in zip(self.query_ids, self.scores)
        }


def as_similarity_matrix(similarities) -> SimilarityMatrix:
    """Normalise any accepted similarity form to a :class:`SimilarityMatrix`."""
    if isinstance(similarities, SimilarityMatrix):
        return similarities
    if isinstance(similarities, Mapping):
        return SimilarityMatrix.from_dict(similarities)
    if isinstance(similarities, tuple) and len(similarities) == 3:
        query_ids, database_ids, scores = similarities
        if hasattr(scores, "detach"):
            scores = scores.detach().cpu().numpy()
        return SimilarityMatrix(list(query_ids), list(database_ids), scores)
    raise TypeError(
        "similarities must be {query: {database_id: score}}, a SimilarityMatrix or (query_ids, database_ids, "
        f"scores), got {type(similarities).__name__}"
    )


class _Protocol:
    """Shared bookkeeping: which user columns belong to the benchmark, which are scored, per query."""

    def __init__(self, sims: SimilarityMatrix, universe: Sequence[str], missing: str):
        if missing not in MISSING_MODES:
            raise ValueError(f"missing must be one of {MISSING_MODES}, got {missing!r}")
        self.sims = sims
        self.missing = missing
        self.universe = set(universe)
        self.column = {d: j for j, d in enumerate(sims.database_ids)}
        self.in_universe = np.fromiter((d in self.universe for d in sims.database_ids), bool, len(sims.database_ids))
        scored_any = ~np.isnan(sims.scores).all(axis=0) if len(sims.query_ids) else np.zeros(0, bool)
        self.present = {d for d, ok in zip(sims.database_ids, scored_any & self.in_universe) if ok}
        self.row = {q: i for i, q in enumerate(sims.query_ids)}

    def mask(self, ids) -> np.ndarray:
        """Boolean [D] over the user's columns, True at `ids`."""
        out = np.zeros(len(self.sims.database_ids), dtype=bool)
        columns = [self.column[d] for d in ids if d in self.column]
        out[columns] = True
        return out

    def query_scores(self, query: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(scores [D], candidate mask [D]) of a query, or None when it has no scores."""
        i = self.row.get(query)
        if i is None:
            return None
        row = self.sims.scores[i]
        candidates = self.in_universe & ~np.isnan(row)
        if query in self.column:
            candidates[self.column[query]] = False
        if not candidates.any():
            return None
        return row, candidates

    def num_positives(self, positives: set[str]) -> int:
        return len(positives & self.present) if self.missing == "drop" else len(positives)


def _ap(ap_fn, row, candidates, relevant, num_positives) -> float:
    return ap_fn(row[candidates], relevant[candidates], num_positives)


def _mean(values) -> float | None:
    values = list(values)
    return float(np.mean(values)) if values else None


# ----------------------------------------------------------------------------------------------------
# FIVR
# ----------------------------------------------------------------------------------------------------


def evaluate_fivr(
    similarities,
    annotation: str | os.PathLike | Mapping | None = None,
    version: str = "200k",
    missing: str = "drop",
) -> dict:
    """FIVR mAP for DSVR (ND ∪ DS), CSVR (+ CS) and ISVR (+ IS) over the version's queries and database.

    `annotation`: ``None`` for the packaged FIVR (versions ``5k``, ``200k``) or any FIVR-schema file/dict.
    Returns ``{"benchmark", "metrics": {task: mAP}, "per_query": {task: {query: AP}}, "counts": {...}}``.
    """
    data = load_fivr_annotation(annotation)
    if version not in data["versions"]:
        raise ValueError(f"FIVR annotation has no version {version!r}; available: {sorted(data['versions'])}")
    queries = [str(q) for q in data["versions"][version]["queries"]]
    database = [str(d) for d in data["versions"][version]["database"]]
    protocol = _Protocol(as_similarity_matrix(similarities), database, missing)
    database_set = protocol.universe
    per_query: dict[str, dict[str, float]] = {task: {} for task in FIVR_TASKS}
    skipped = {task: 0 for task in FIVR_TASKS}
    missing_queries, missing_positives = [], set()
    for query in queries:
        scored = protocol.query_scores(query)
        if scored is None:
            missing_queries.append(query)
            continue
        row, candidates = scored
        labels = data["annotation"].get(query, {})
        for task, task_labels in FIVR_TASKS.items():
            positives = {str(v) for label in task_labels for v in labels.get(label, [])}
            positives = (positives & database_set) - {query}
            missing_positives |= positives - protocol.present
            num_positives = protocol.num_positives(positives)
            if num_positives == 0:
                skipped[task] += 1
                continue
            relevant = protocol.mask(positives)
            per_query[task][query] = _ap(average_precision, row, candidates, relevant, num_positives)
    name = f"fivr-{version}" if annotation is None else f"fivr:{version}"
    return {
        "benchmark": name,
        "metrics": {task: _mean(per_query[task].values()) for task in FIVR_TASKS},
        "per_query": per_query,
        "counts": {
            "queries": len(queries),
            "queries_evaluated": len(queries) - len(missing_queries),
            "queries_missing": len(missing_queries),
            "queries_without_positives": skipped,
            "database": len(database),
            "database_missing": len(database_set - protocol.present),
            "positives_missing": len(missing_positives),
            "missing_mode": missing,
        },
        "missing_queries": missing_queries,
    }


# ----------------------------------------------------------------------------------------------------
# CC_WEB_VIDEO
# ----------------------------------------------------------------------------------------------------


def _cc_web_sets(data: Mapping) -> tuple[list[str], list[dict[str, str]], list[set[str]], list[str]]:
    """(queries, per query {video_id: label}, per query excluded video ids, all video ids)."""
    index = _require(data, "index", list, "CC_WEB_VIDEO annotation")
    queries = [str(q) for q in _require(data, "queries", list, "CC_WEB_VIDEO annotation")]
    truths = _require(data, "ground_truth", list, "CC_WEB_VIDEO annotation")
    excluded = _require(data, "excluded", list, "CC_WEB_VIDEO annotation")
    if not len(queries) == len(truths) == len(excluded):
        raise ValueError("CC_WEB_VIDEO annotation: queries, ground_truth and excluded must have equal lengths")

    def video(position, where: str) -> str:
        position = int(position)
        if not 0 <= position < len(index):
            raise ValueError(f"CC_WEB_VIDEO annotation: {where} refers to index {position}, outside the "
                             f"index of {len(index)} entries")
        return index[position]  # "" for the 10 empty index entries (5 of them labelled X): skipped


    labelled, dropped = [], []
    for number, (truth, excl) in enumerate(zip(truths, excluded)):
        labels = {}
        for position, label in truth.items():
            label = str(label).upper()  # the file has one stray lower-case "x"
            if label not in CC_WEB_LABELS:
                raise ValueError(f"CC_WEB_VIDEO annotation: ground_truth[{number}][{position!r}] has label "
                                 f"{label!r}; expected one of {''.join(sorted(CC_WEB_LABELS))}")
            name = video(position, f"ground_truth[{number}]")
            if name:
                labels[name] = label
        labelled.append(labels)
        dropped.append({video(p, f"excluded[{number}]") for p in excl} - {""})
    # Five videos have two index entries (same id, same labels): one video each.
    return queries, labelled, dropped, list(dict.fromkeys(v for v in index if v))


def evaluate_cc_web(similarities, missing: str = "miss") -> dict:
    """CC_WEB_VIDEO mAP in its four variants: ``cc_web`` (rank the videos annotated for the query's set),
    ``cc_web*`` (rank the whole dataset) and their clean versions ``cc_web_c``/``cc_web*_c`` (excluded
    videos dropped). Positives: labels E, S, L, M, V."""
    queries, labelled, dropped, videos = _cc_web_sets(load_benchmark("cc_web_video"))
    protocol = _Protocol(as_similarity_matrix(similarities), videos, missing)
    per_query: dict[str, dict[str, float]] = {variant: {} for variant in CC_WEB_VARIANTS}
    missing_queries, missing_positives = [], set()
    for query, labels, excluded in zip(queries, labelled, dropped):
        scored = protocol.query_scores(query)
        if scored is None:
            missing_queries.append(query)
            continue
        row, candidates = scored
        annotated = protocol.mask(labels)
        excluded_mask = protocol.mask(excluded)
        all_positives = {v for v, label in labels.items() if label in CC_WEB_POSITIVE} - {query}
        missing_positives |= all_positives - protocol.present
        for variant, (whole_dataset, clean) in CC_WEB_VARIANTS.items():
            positives = all_positives - excluded if clean else all_positives
            keep = candidates if whole_dataset else candidates & annotated
            if clean:
                keep = keep & ~excluded_mask
            num_positives = protocol.num_positives(positives)
            if num_positives:
                relevant = protocol.mask(positives)
                per_query[variant][query] = _ap(average_precision, row, keep, relevant, num_positives)
    return {
        "benchmark": "cc_web",
        "metrics": {variant: _mean(values.values()) for variant, values in per_query.items()},
        "per_query": per_query,
        "counts": {
            "queries": len(queries),
            "queries_evaluated": len(queries) - len(missing_queries),
            "queries_missing": len(missing_queries),
            "database": len(videos),
            "database_missing": len(set(videos) - protocol.present),
            "positives_missing": len(missing_positives),
            "missing_mode": missing,
        },
        "missing_queries": missing_queries,
    }


# ----------------------------------------------------------------------------------------------------
# EVVE
# ----------------------------------------------------------------------------------------------------


def evaluate_evve(similarities, missing: str = "miss") -> dict:
    """EVVE mAP (trapezoidal AP, mean over all queries) and the mAP of each of the 13 events."""
    data = load_benchmark("evve")
    database = [str(d) for d in _require(data, "database", list, "EVVE annotation")]
    events = _require(data, "events", Mapping, "EVVE annotation")
    protocol = _Protocol(as_similarity_matrix(similarities), database, missing)
    per_event: dict[str, dict[str, float]] = {name: {} for name in events}
    missing_queries, missing_positives = [], set()
    for name, event in events.items():
        positives = {str(p) for p in event["positives"]} & protocol.universe
        missing_positives |= positives - protocol.present
        relevant = protocol.mask(positives)
        for query in event["queries"]:
            scored = protocol.query_scores(query)
            if scored is None:
                missing_queries.append(query)
                continue
            row, candidates = scored
            num_positives = protocol.num_positives(positives - {query})
            per_event[name][query] = _ap(evve_average_precision, row, candidates, relevant, num_positives)
    per_query = {q: ap for values in per_event.values() for q, ap in values.items()}
    metrics = {"mAP": _mean(per_query.values())}
    metrics.update({f"mAP/{name}": _mean(values.values()) for name, values in per_event.items()})
    num_queries = sum(len(event["queries"]) for event in events.values())
    return {
        "benchmark": "evve",
        "metrics": metrics,
        "per_query": {"mAP": per_query},
        "per_event": per_event,
        "counts": {
            "queries": num_queries,
            "queries_evaluated": num_queries - len(missing_queries),
            "queries_missing": len(missing_queries),
            "database": len(database),
            "database_missing": len(set(database) - protocol.present),
            "positives_missing": len(missing_positives),
            "missing_mode": missing,
        },
        "missing_queries": missing_queries,
    }


# ----------------------------------------------------------------------------------------------------
# Dispatch
# ----------------------------------------------------------------------------------------------------

BENCHMARKS = ("fivr-5k", "fivr-200k", "cc_web", "evve")


def benchmark_ids(benchmark: str, annotation=None, version: str | None = None) -> tuple[list[str], list[str]]:
    """(query ids, database ids) a benchmark needs features for."""
    if annotation is not None or benchmark.startswith("fivr"):
        data = load_fivr_annotation(annotation)
        version = version or benchmark.split("-", 1)[-1]
        if version not in data["versions"]:
            raise ValueError(f"FIVR annotation has no version {version!r}; available: {sorted(data['versions'])}")
        return list(map(str, data["versions"][version]["queries"])), list(map(str, data["versions"][version]["database"]))
    if benchmark == "cc_web":
        queries, _, _, videos = _cc_web_sets(load_benchmark("cc_web_video"))
        return queries, videos
    if benchmark == "evve":
        data = load_benchmark("evve")
        return list(map(str, data["queries"])), list(map(str, data["database"]))
    raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}")


def evaluate_benchmark(
    benchmark: str, similarities, annotation=None, version: str | None = None, missing: str | None = None
) -> dict:
    """Run the protocol of `benchmark` (``fivr-5k``, ``fivr-200k``, ``cc_web``, ``evve``, or ``fivr`` with a
    custom `annotation` and `version`) with its default handling of missing videos unless `missing` is given."""
    if annotation is not None or benchmark.startswith("fivr"):
        version = version or benchmark.split("-", 1)[-1]
        return evaluate_fivr(similarities, annotation, version, missing or "drop")
    if benchmark == "cc_web":
        return evaluate_cc_web(similarities, missing or "miss")
    if benchmark == "evve":
        return evaluate_evve(similarities, missing or "miss")
    raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}")


__all__ = [
    "BENCHMARKS",
    "SimilarityMatrix",
    "as_similarity_matrix",
    "benchmark_ids",
    "evaluate_benchmark",
    "evaluate_cc_web",
    "evaluate_evve",
    "evaluate_fivr",
    "load_benchmark",
    "load_fivr_annotation",
]
