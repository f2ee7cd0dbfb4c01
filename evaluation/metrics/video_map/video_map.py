"""`evaluate` metric: mean average precision of ranked retrieval, FIVR/CC_WEB or EVVE definition.

Load with ``evaluate.load("<path>/evaluation/metrics/video_map")``. One example per query:
``predictions`` = the similarity scores of its database items, ``references`` = their relevance (1/0).
The math is `vidtempo.evaluation.ap`.
"""

import datasets
import evaluate
import numpy as np

from .ap import average_precision, evve_average_precision

# ap.py imports its sibling degenerate.py; naming it here makes evaluate.load copy it too (no comment on import lines:
# evaluate reads a trailing comment as a download URL)
from .degenerate import mostly_tied

_COPIED_SIBLINGS = (mostly_tied,)  # keeps the degenerate.py import (and so evaluate's copy of it)

_DESCRIPTION = """Mean average precision of video retrieval. `ap_definition="fivr"` (default): AP = (1/|P|) sum over
the positives' ranks k of (positives in the first k)/k, ties in input order (FIVR, CC_WEB_VIDEO). `"evve"`: EVVE's
trapezoidal AP. `num_positives` (one per query) counts positives absent from the ranking as never retrieved."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of lists of float, the scores of each query's database items.
    references: list of lists of int (0/1), whether each item is relevant to the query.
    num_positives: optional list of int, |P| per query (>= the relevant items listed).
    ap_definition: "fivr" (default) or "evve".
Returns:
    map: the mean over queries; average_precision: the per-query APs.
Example:
    >>> metric = evaluate.load("evaluation/metrics/video_map")
    >>> metric.compute(predictions=[[0.9, 0.8, 0.7]], references=[[1, 0, 1]])["map"]
    0.8333333333333333
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class VideoMap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                }
            ),
        )

    def _compute(self, predictions, references, num_positives=None, ap_definition="fivr"):
        if ap_definition not in ("fivr", "evve"):
            raise ValueError(f"ap_definition must be 'fivr' or 'evve', got {ap_definition!r}")
        if num_positives is not None and len(num_positives) != len(predictions):
            raise ValueError(f"num_positives has {len(num_positives)} entries for {len(predictions)} queries")
        ap_fn = average_precision if ap_definition == "fivr" else evve_average_precision
        aps = [
            ap_fn(scores, np.asarray(relevant) > 0, None if num_positives is None else int(num_positives[i]))
            for i, (scores, relevant) in enumerate(zip(predictions, references))
        ]
        return {"map": float(np.mean(aps)) if aps else float("nan"), "average_precision": aps}
