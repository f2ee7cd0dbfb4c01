"""The FIVR, CC_WEB_VIDEO and EVVE protocols (METHODS.md §1.5) on similarities or embeddings.

Every evaluator takes similarities in one of three forms:

* ``{query_id: {database_id: score}}`` (the form of the benchmarks' own evaluation code);
* a :class:`SimilarityMatrix` (query ids, database ids, scores ``[Q, D]``; NaN = pair not scored);
* a tuple ``(query_ids, database_ids, scores)``.

**Ties** keep the order in which a query's database scores are given (a stable sort): the column order
of a matrix, the order of each query's dict. **Protocol variants** (``protocol=``):

* ``"reference"`` (default) reproduces the evaluation code of TCA / ViSiL / DnS / S2VS (MKLab), which
  produced the published tables, to rounding:

  - FIVR: the query is left out of its own ranking, but a query labelled positive for itself (ISVR has
    one, ``eCrhXArKE24``) stays a positive that can never be retrieved;
  - CC_WEB_VIDEO: the query is ranked with the other videos and its own ``E`` label is a positive;
    positives are counted per index entry, so the video listed twice (``4_160_Y``) counts twice;
  - FIVR and EVVE drop positives without features from P (``missing="drop"``: the code passes the set of
    videos with features as ``all_db``); CC_WEB_VIDEO counts every annotated positive (``"miss"``).

* ``"strict"``: the query is never ranked against itself nor one of its own positives, every video
  counts once, and positives without features count as never retrieved (``missing="miss"``).

``missing`` (``"drop"`` / ``"miss"``) overrides the variant's rule for videos without scores. A video
"has features" when it is a benchmark database video with at least one score, or a benchmark query
with at least one score. Database ids the benchmark does not know are ignored (EVVE: "ranks shifted for
videos that are not in the database"). Queries without any score are skipped and counted. Every result
names its protocol (``result["protocol"]``) and counts the queries and database videos evaluated and the
positives without features (``result["counts"]``); queries whose scores are mostly one tied value are
counted and logged as a warning (their AP is whatever the given order makes it).
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .ap import FIVR_LABELS, FIVR_TASKS, ap_from_hit_ranks, evve_ap_from_hit_ranks
from .degenerate import mostly_tied, warn_tied_queries

logger = logging.getLogger(__name__)

BENCHMARK_FILES = {
    "fivr": "fivr.json.gz",
    "fivr200k_official": "fivr200k_official_annotation.json.gz",
    "cc_web_video": "cc_web_video.json.gz",
    "evve": "evve.json.gz",
    "vcdb": "vcdb.json.gz",
}
FIVR_ANNOTATIONS = {
    "published": "the annotation file of the TCA/ViSiL evaluation code, used by the published tables (default)",
    "official": "the FIVR-200K dataset's own annotation.json (labels 1 / 4 / 22 queries differently for "
    "DSVR / CSVR / ISVR; counting only videos in the FIVR-200K database, 1 / 1 / 0)",
}
CC_WEB_POSITIVE = frozenset("ESLMV")
CC_WEB_LABELS = frozenset("ESLMVX")
CC_WEB_VARIANTS = {  # name -> (rank the whole dataset, drop the excluded videos)
    "cc_web": (False, False),
    "cc_web*": (True, False),
    "cc_web_c": (False, True),
    "cc_web*_c": (True, True),
}
MISSING_MODES = ("drop", "miss")
PROTOCOL_VARIANTS = ("reference", "strict")
DEFAULT_MISSING = {
    "reference": {"fivr": "drop", "cc_web": "miss", "evve": "drop"},
    "strict": {"fivr": "miss", "cc_web": "miss", "evve": "miss"},
}
PROTOCOL_RULES = {
    "reference": {
        "fivr": [
            "query left out of its own ranking",
            "a query labelled positive for itself stays a positive that is never retrieved",
        ],
        "cc_web": [
            "query ranked against itself, its own E label a positive",
            "positives counted per index entry (4_160_Y, listed twice, counts twice)",
        ],
        "evve": ["ranks of videos outside the database skipped"],
    },
    "strict": {
        "fivr": ["query left out of its own ranking and of its positives"],
        "cc_web": ["query left out of its own ranking and of its positives", "every video counted once"],
        "evve": [
            "query left out of its own ranking and of its positives",
            "ranks of videos outside the database skipped",
        ],
    },
}
TIE_RULE = "ties keep the order in which each query's database scores are given (stable sort)"
MISSING_RULES = {
    "drop": "positives without features dropped from P",
    "miss": "positives without features count as never retrieved",
}


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
    """The packaged annotation of `name` (fivr, fivr200k_official, cc_web_video, evve, vcdb) as parsed JSON
    (schema in ``benchmarks/README.md``). The result is cached and shared: do not modify it."""
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


def _is_packaged_fivr(annotation) -> bool:
    return annotation is None or (isinstance(annotation, str) and annotation in FIVR_ANNOTATIONS)


def annotation_name(annotation) -> str:
    """``published``, ``official`` or ``custom`` for a FIVR `annotation` argument."""
    if annotation is None:
        return "published"
    return annotation if _is_packaged_fivr(annotation) else "custom"


def load_fivr_annotation(source: str | os.PathLike | Mapping | None = None) -> dict:
    """A FIVR-schema annotation, validated: the packaged FIVR (``None`` or ``"published"``: the annotation the
    published tables used; ``"official"``: the FIVR-200K dataset's ``annotation.json`` with the same versions),
    a JSON file, or a dict ``{"versions": {name: {"queries": [...], "database": [...]}},
    "annotation": {q: {label: [...]}}}``."""
    where = "FIVR annotation" if _is_packaged_fivr(source) or isinstance(source, Mapping) else str(source)
    if source is None or source == "published":
        data = load_benchmark("fivr")
    elif source == "official":
        where = "official FIVR-200K annotation"
        data = {
            "versions": load_benchmark("fivr")["versions"],
            "annotation": load_benchmark("fivr200k_official"),
        }
    elif isinstance(source, Mapping):
        data = source
    else:
        data = _read_json(source)
    versions = _require(data, "versions", Mapping, where)
    annotation = _require(data, "annotation", Mapping, where)
    for name, version in versions.items():
        for key in ("queries", "database"):
            _require(version, key, list, f"{where}: versions[{name!r}]")
    for query, labels in annotation.items():
        if not isinstance(labels, Mapping):
            raise ValueError(f"{where}: annotation[{query!r}] must map labels to id lists")
        for label, ids in labels.items():
            if label not in FIVR_LABELS:
                raise ValueError(
                    f"{where}: annotation[{query!r}] has label {label!r}; expected {FIVR_LABELS}"
                )
            if not isinstance(ids, list):
                raise ValueError(f"{where}: annotation[{query!r}][{label!r}] must be a list of ids")
    return data


# ----------------------------------------------------------------------------------------------------
# Similarities
# ----------------------------------------------------------------------------------------------------


@dataclass
class SimilarityMatrix:
    """Scores of `query_ids` against `database_ids`: `scores[i, j]` (NaN = not scored).

    `row_orders[i]`, when given, lists the columns of query i in the order its scores were given (ties
    keep that order); ``None`` (or a ``None`` entry) means column order."""

    query_ids: list[str]
    database_ids: list[str]
    scores: np.ndarray  # [Q, D]
    row_orders: list[np.ndarray | None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.query_ids = [str(q) for q in self.query_ids]
        self.database_ids = [str(d) for d in self.database_ids]
        self.scores = np.asarray(self.scores, dtype=np.float64)
        expected = (len(self.query_ids), len(self.database_ids))
        if self.scores.shape != expected:
            raise ValueError(
                f"similarity scores must have shape {expected} (queries, database), got {self.scores.shape}"
            )
        for name, ids in (("query", self.query_ids), ("database", self.database_ids)):
            if len(set(ids)) != len(ids):
                raise ValueError(f"similarities: duplicate {name} ids")
        if self.row_orders is not None and len(self.row_orders) != len(self.query_ids):
            raise ValueError(
                f"similarities: {len(self.row_orders)} row orders for {len(self.query_ids)} queries"
            )

    @classmethod
    def from_dict(cls, similarities: Mapping[str, Mapping[str, float]]) -> SimilarityMatrix:
        """From ``{query: {database_id: score}}``; pairs absent from the dict are NaN. Each query's dict
        order is kept as its tie order."""
        database_ids: dict[str, int] = {}
        for query, row in similarities.items():
            if not isinstance(row, Mapping):
                raise ValueError(f"similarities[{query!r}] must be a dict database_id -> score")
            for video in row:
                database_ids.setdefault(str(video), len(database_ids))
        scores = np.full((len(similarities), len(database_ids)), np.nan)
        orders: list[np.ndarray | None] = []
        for i, row in enumerate(similarities.values()):
            order = None
            if row:
                columns = np.fromiter((database_ids[str(v)] for v in row), dtype=np.int64, count=len(row))
                scores[i, columns] = np.fromiter(row.values(), dtype=np.float64, count=len(row))
                if (np.diff(columns) < 0).any():
                    order = columns
            orders.append(order)
        has_orders = any(order is not None for order in orders)
        return cls(list(similarities), list(database_ids), scores, orders if has_orders else None)

    def to_dict(self) -> dict[str, dict[str, float]]:
        out = {}
        for i, (query, row) in enumerate(zip(self.query_ids, self.scores)):
            columns = self.row_order(i)
            out[query] = {self.database_ids[j]: float(row[j]) for j in columns if not np.isnan(row[j])}
        return out

    def row_order(self, i: int) -> np.ndarray:
        """Columns of query `i` in the order its scores were given."""
        order = self.row_orders[i] if self.row_orders is not None else None
        if order is None:
            return np.arange(len(self.database_ids))
        rest = np.setdiff1d(np.arange(len(self.database_ids)), order, assume_unique=True)
        return np.concatenate([order, rest])  # the rest is NaN


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


def _check_protocol(protocol: str, missing: str | None, benchmark: str) -> str:
    if protocol not in PROTOCOL_VARIANTS:
        raise ValueError(f"protocol must be one of {PROTOCOL_VARIANTS}, got {protocol!r}")
    missing = missing or DEFAULT_MISSING[protocol][benchmark]
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {MISSING_MODES}, got {missing!r}")
    return missing


def protocol_description(benchmark: str, protocol: str = "reference", missing: str | None = None) -> dict:
    """What a protocol variant does, as stored in ``result["protocol"]``."""
    missing = _check_protocol(protocol, missing, benchmark)
    return {
        "variant": protocol,
        "missing": missing,
        "published_evaluator": protocol == "reference" and missing == DEFAULT_MISSING["reference"][benchmark],
        "rules": [TIE_RULE, *PROTOCOL_RULES[protocol][benchmark], MISSING_RULES[missing]],
    }


class _Protocol:
    """Shared bookkeeping: which user columns belong to the benchmark, which videos have features, the
    ranking of one query."""

    def __init__(
        self,
        sims: SimilarityMatrix,
        universe: Sequence[str],
        queries: Sequence[str],
        protocol: str,
        missing: str,
    ):
        self.sims = sims
        self.strict = protocol == "strict"
        self.missing = missing
        self.universe = set(universe)
        self.column = {d: j for j, d in enumerate(sims.database_ids)}
        self.in_universe = np.fromiter(
            (d in self.universe for d in sims.database_ids), bool, len(sims.database_ids)
        )
        scored = ~np.isnan(sims.scores)
        scored_any = scored.any(axis=0) if len(sims.query_ids) else np.zeros(len(sims.database_ids), bool)
        self.present = {d for d, ok in zip(sims.database_ids, scored_any & self.in_universe) if ok}
        self.row = {q: i for i, q in enumerate(sims.query_ids) if scored[i].any()}
        self.scored_queries = {q for q in queries if q in self.row}
        self.with_features = self.present | self.scored_queries
        self.pool = self.universe | self.scored_queries
        self.tied: list[str] = []

    def mask(self, ids) -> np.ndarray:
        """Boolean [D] over the user's columns, True at `ids`."""
        out = np.zeros(len(self.sims.database_ids), dtype=bool)
        columns = [self.column[d] for d in ids if d in self.column]
        out[columns] = True
        return out

    def ranking(self, query: str, exclude_query: bool) -> tuple[np.ndarray, np.ndarray] | None:
        """(scores [D], the candidate columns ranked by descending score, ties in the order given) of a
        query, or None when it has no scores."""
        i = self.row.get(query)
        if i is None:
            return None
        row = self.sims.scores[i]
        candidates = self.in_universe & ~np.isnan(row)
        if exclude_query and query in self.column:
            candidates[self.column[query]] = False
        order = self.sims.row_order(i)
        columns = order[candidates[order]]
        return row, columns[np.argsort(-row[columns], kind="stable")]

    def check_ties(self, query: str, scores: np.ndarray, relevant: np.ndarray) -> None:
        """Record `query` when most of its scores are tied with a positive among them."""
        if mostly_tied(scores, relevant):
            self.tied.append(query)

    def positives(self, labelled: set[str], query: str) -> tuple[set[str], set[str]]:
        """(P under this protocol, the labelled positives that have no features)."""
        if self.strict:
            labelled = labelled - {query}
        labelled = labelled & self.pool
        return (
            labelled & self.with_features if self.missing == "drop" else labelled
        ), labelled - self.with_features

    def counts(
        self, queries: Sequence[str], missing_queries: list[str], missing_positives: set[str], where: str
    ) -> dict:
        warn_tied_queries(self.tied, len(queries) - len(missing_queries), where)
        return {
            "queries": len(queries),
            "queries_evaluated": len(queries) - len(missing_queries),
            "queries_missing": len(missing_queries),
            "database": len(self.universe),
            "database_evaluated": len(self.present),
            "database_missing": len(self.universe - self.present),
            "positives_missing": len(missing_positives),
            "queries_mostly_tied": len(self.tied),
            "missing_mode": self.missing,
        }


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
    missing: str | None = None,
    protocol: str = "reference",
) -> dict:
    """FIVR mAP for DSVR (ND ∪ DS), CSVR (+ CS) and ISVR (+ IS) over the version's queries and database.

    `annotation`: ``None``/``"published"`` (the annotation of the published tables), ``"official"`` (the
    FIVR-200K dataset's file), or any FIVR-schema file/dict. `protocol`: ``"reference"`` (the published
    evaluator: a self-labelled query stays an unretrievable positive, positives without features dropped)
    or ``"strict"`` (the query is not its own positive, missing positives count as misses); `missing`
    overrides the missing-video rule. Queries without a positive for a task are left out of its mean.
    Returns ``{"benchmark", "protocol", "annotation", "metrics": {task: mAP}, "per_query": {task: {query: AP}},
    "counts": {...}, "missing_queries"}``.
    """
    missing = _check_protocol(protocol, missing, "fivr")
    data = load_fivr_annotation(annotation)
    if version not in data["versions"]:
        raise ValueError(f"FIVR annotation has no version {version!r}; available: {sorted(data['versions'])}")
    queries = [str(q) for q in data["versions"][version]["queries"]]
    database = [str(d) for d in data["versions"][version]["database"]]
    state = _Protocol(as_similarity_matrix(similarities), database, queries, protocol, missing)
    per_query: dict[str, dict[str, float]] = {task: {} for task in FIVR_TASKS}
    skipped = {task: 0 for task in FIVR_TASKS}
    missing_queries, missing_positives = [], set()
    for query in queries:
        ranked = state.ranking(query, exclude_query=True)
        if ranked is None:
            missing_queries.append(query)
            continue
        row, columns = ranked
        labels = data["annotation"].get(query, {})
        everything = {str(v) for label in FIVR_TASKS["ISVR"] for v in labels.get(label, [])}
        state.check_ties(query, row[columns], state.mask(everything)[columns])
        for task, task_labels in FIVR_TASKS.items():
            labelled = {str(v) for label in task_labels for v in labels.get(label, [])}
            positives, without_features = state.positives(labelled, query)
            missing_positives |= without_features
            if not positives:
                skipped[task] += 1
                continue
            hits = np.flatnonzero(state.mask(positives)[columns])
            per_query[task][query] = ap_from_hit_ranks(hits, len(positives))
    name = f"fivr-{version}" if _is_packaged_fivr(annotation) else f"fivr:{version}"
    counts = state.counts(queries, missing_queries, missing_positives, name)
    counts["queries_without_positives"] = skipped
    return {
        "benchmark": name,
        "protocol": protocol_description("fivr", protocol, missing),
        "annotation": annotation_name(annotation),
        "metrics": {task: _mean(per_query[task].values()) for task in FIVR_TASKS},
        "per_query": per_query,
        "counts": counts,
        "missing_queries": missing_queries,
    }


# ----------------------------------------------------------------------------------------------------
# CC_WEB_VIDEO
# ----------------------------------------------------------------------------------------------------


@dataclass
class _CCWebQuery:
    query: str
    labels: dict[int, str]  # index position -> label (upper case)
    excluded: set[int]  # index positions


def _cc_web_sets(data: Mapping) -> tuple[list[_CCWebQuery], list[str], dict[str, int]]:
    """(per query: its labelled and excluded index positions; all video ids; video id -> index position)."""
    where = "CC_WEB_VIDEO annotation"
    index = _require(data, "index", list, where)
    queries = [str(q) for q in _require(data, "queries", list, where)]
    truths = _require(data, "ground_truth", list, where)
    excluded = _require(data, "excluded", list, where)
    vid2index = {str(k): int(v) for k, v in _require(data, "vid2index", Mapping, where).items()}
    if not len(queries) == len(truths) == len(excluded):
        raise ValueError(f"{where}: queries, ground_truth and excluded must have equal lengths")

    def position(value, what: str) -> int:
        value = int(value)
        if not 0 <= value < len(index):
            raise ValueError(
                f"{where}: {what} refers to index {value}, outside the index of {len(index)} entries"
            )
        return value

    out = []
    for number, (query, truth, excl) in enumerate(zip(queries, truths, excluded)):
        labels = {}
        for key, label in truth.items():
            label = str(label).upper()  # the file has one stray lower-case "x"
            if label not in CC_WEB_LABELS:
                raise ValueError(
                    f"{where}: ground_truth[{number}][{key!r}] has label {label!r}; expected one of "
                    f"{''.join(sorted(CC_WEB_LABELS))}"
                )
            labels[position(key, f"ground_truth[{number}]")] = label
        out.append(_CCWebQuery(query, labels, {position(p, f"excluded[{number}]") for p in excl}))
    for video, p in vid2index.items():
        if index[position(p, f"vid2index[{video!r}]")] != video:
            raise ValueError(f"{where}: vid2index[{video!r}] = {p} but index[{p}] is {index[p]!r}")
    # Ten index entries are empty and five videos have two entries (same labels): one video each.
    return out, list(dict.fromkeys(v for v in index if v)), vid2index


def evaluate_cc_web(similarities, missing: str | None = None, protocol: str = "reference") -> dict:
    """CC_WEB_VIDEO mAP in its four variants: ``cc_web`` (rank the videos annotated for the query's set),
    ``cc_web*`` (rank the whole dataset) and their clean versions ``cc_web_c``/``cc_web*_c`` (excluded
    videos dropped). Positives: labels E, S, L, M, V.

    `protocol`: ``"reference"`` (the published evaluator: the query is ranked against itself and its own
    ``E`` label counts; positives are counted per index entry, so ``4_160_Y`` counts twice; every annotated
    positive counts, with features or not) or ``"strict"`` (the query is left out of its ranking and its
    positives, each video counts once); `missing` (``"drop"``) drops positives without features."""
    missing = _check_protocol(protocol, missing, "cc_web")
    data = load_benchmark("cc_web_video")
    sets, videos, vid2index = _cc_web_sets(data)
    index = data["index"]
    queries = [s.query for s in sets]
    state = _Protocol(as_similarity_matrix(similarities), videos, queries, protocol, missing)
    column_position = np.array([vid2index.get(v, -1) for v in state.sims.database_ids])
    per_query: dict[str, dict[str, float]] = {variant: {} for variant in CC_WEB_VARIANTS}
    missing_queries, missing_positives = [], set()
    for entry in sets:
        query = entry.query
        ranked = state.ranking(query, exclude_query=state.strict)
        if ranked is None:
            missing_queries.append(query)
            continue
        row, columns = ranked
        positions = column_position[columns]
        annotated = np.fromiter((p in entry.labels for p in positions), bool, len(positions))
        positive = np.fromiter(
            (entry.labels.get(p) in CC_WEB_POSITIVE for p in positions), bool, len(positions)
        )
        excluded = np.fromiter((p in entry.excluded for p in positions), bool, len(positions))
        state.check_ties(query, row[columns], positive)
        positive_positions = [p for p, label in entry.labels.items() if label in CC_WEB_POSITIVE]
        _, without_features = state.positives({index[p] for p in positive_positions} - {""}, query)
        missing_positives |= without_features
        for variant, (whole_dataset, clean) in CC_WEB_VARIANTS.items():
            counted = [p for p in positive_positions if not (clean and p in entry.excluded)]
            if state.strict:  # each video once, the query not among its positives
                counted_videos, _ = state.positives({index[p] for p in counted}, query)
                num_positives = len(counted_videos)
            elif missing == "drop":  # per index entry
                num_positives = sum(index[p] in state.with_features for p in counted)
            else:
                num_positives = len(counted)
            if not num_positives:
                continue
            keep = np.ones(len(columns), bool) if whole_dataset else annotated.copy()
            if clean:
                keep &= ~excluded
            per_query[variant][query] = ap_from_hit_ranks(np.flatnonzero(positive[keep]), num_positives)
    return {
        "benchmark": "cc_web",
        "protocol": protocol_description("cc_web", protocol, missing),
        "metrics": {variant: _mean(values.values()) for variant, values in per_query.items()},
        "per_query": per_query,
        "counts": state.counts(queries, missing_queries, missing_positives, "cc_web"),
        "missing_queries": missing_queries,
    }


# ----------------------------------------------------------------------------------------------------
# EVVE
# ----------------------------------------------------------------------------------------------------


def evaluate_evve(similarities, missing: str | None = None, protocol: str = "reference") -> dict:
    """EVVE mAP (trapezoidal AP, mean over the queries evaluated) and the mAP of each of the 13 events.

    Results outside the EVVE database shift no rank. `protocol`: ``"reference"`` (the published evaluator:
    positives without features are dropped from P) or ``"strict"`` (they count as never retrieved, the
    query is not its own positive); `missing` overrides the missing-video rule."""
    missing = _check_protocol(protocol, missing, "evve")
    data = load_benchmark("evve")
    database = [str(d) for d in _require(data, "database", list, "EVVE annotation")]
    events = _require(data, "events", Mapping, "EVVE annotation")
    queries = [str(q) for event in events.values() for q in event["queries"]]
    state = _Protocol(as_similarity_matrix(similarities), database, queries, protocol, missing)
    per_event: dict[str, dict[str, float]] = {name: {} for name in events}
    missing_queries, missing_positives = [], set()
    for name, event in events.items():
        labelled = {str(p) for p in event["positives"]}
        for query in map(str, event["queries"]):
            ranked = state.ranking(query, exclude_query=state.strict)
            if ranked is None:
                missing_queries.append(query)
                continue
            row, columns = ranked
            positives, without_features = state.positives(labelled, query)
            missing_positives |= without_features
            relevant = state.mask(positives)[columns]
            state.check_ties(query, row[columns], relevant)
            per_event[name][query] = evve_ap_from_hit_ranks(np.flatnonzero(relevant), len(positives))
    per_query = {q: ap for values in per_event.values() for q, ap in values.items()}
    metrics = {"mAP": _mean(per_query.values())}
    metrics.update({f"mAP/{name}": _mean(values.values()) for name, values in per_event.items()})
    return {
        "benchmark": "evve",
        "protocol": protocol_description("evve", protocol, missing),
        "metrics": metrics,
        "per_query": {"mAP": per_query},
        "per_event": per_event,
        "counts": state.counts(queries, missing_queries, missing_positives, "evve"),
        "missing_queries": missing_queries,
    }


# ----------------------------------------------------------------------------------------------------
# Dispatch
# ----------------------------------------------------------------------------------------------------

BENCHMARKS = ("fivr-5k", "fivr-200k", "cc_web", "evve")


def _is_fivr(benchmark: str, annotation) -> bool:
    return benchmark.startswith("fivr") or not _is_packaged_fivr(annotation)


def benchmark_ids(benchmark: str, annotation=None, version: str | None = None) -> tuple[list[str], list[str]]:
    """(query ids, database ids) a benchmark needs features for."""
    if _is_fivr(benchmark, annotation):
        data = load_fivr_annotation(annotation)
        version = version or benchmark.split("-", 1)[-1]
        if version not in data["versions"]:
            raise ValueError(
                f"FIVR annotation has no version {version!r}; available: {sorted(data['versions'])}"
            )
        return list(map(str, data["versions"][version]["queries"])), list(
            map(str, data["versions"][version]["database"])
        )
    if benchmark == "cc_web":
        sets, videos, _ = _cc_web_sets(load_benchmark("cc_web_video"))
        return [s.query for s in sets], videos
    if benchmark == "evve":
        data = load_benchmark("evve")
        return list(map(str, data["queries"])), list(map(str, data["database"]))
    raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}")


def evaluate_benchmark(
    benchmark: str,
    similarities,
    annotation=None,
    version: str | None = None,
    missing: str | None = None,
    protocol: str = "reference",
) -> dict:
    """Run the protocol of `benchmark` (``fivr-5k``, ``fivr-200k``, ``cc_web``, ``evve``, or ``fivr`` with a
    custom `annotation` and `version`) in the `protocol` variant (``reference``: the published evaluators;
    ``strict``), with the variant's handling of missing videos unless `missing` is given. `annotation` for
    the packaged FIVR: ``published`` (default) or ``official``."""
    if _is_fivr(benchmark, annotation):
        version = version or benchmark.split("-", 1)[-1]
        return evaluate_fivr(similarities, annotation, version, missing, protocol)
    if annotation not in (None, "published"):
        raise ValueError(f"annotation {annotation!r} applies to FIVR only, not to {benchmark!r}")
    if benchmark == "cc_web":
        return evaluate_cc_web(similarities, missing, protocol)
    if benchmark == "evve":
        return evaluate_evve(similarities, missing, protocol)
    raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}")


__all__ = [
    "BENCHMARKS",
    "FIVR_ANNOTATIONS",
    "PROTOCOL_VARIANTS",
    "SimilarityMatrix",
    "annotation_name",
    "as_similarity_matrix",
    "benchmark_ids",
    "evaluate_benchmark",
    "evaluate_cc_web",
    "evaluate_evve",
    "evaluate_fivr",
    "load_benchmark",
    "load_fivr_annotation",
    "protocol_description",
]
