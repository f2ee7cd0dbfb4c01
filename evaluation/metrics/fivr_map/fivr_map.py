"""`evaluate` metric: FIVR DSVR / CSVR / ISVR mAP from each query's scored, labelled database items.

Load with ``evaluate.load("<path>/evaluation/metrics/fivr_map")``. One example per query:
``predictions`` = scores of its database items (the query itself left out), ``references`` = their FIVR
labels (``ND``, ``DS``, ``CS``, ``IS``, ``DA``, or ``""`` for unrelated). The math is
`vidtempo.evaluation.ap.fivr_task_map`; the full protocol over id-keyed similarities is
`vidtempo.evaluation.benchmarks.evaluate_fivr`.
"""

import datasets
import evaluate

from .ap import fivr_task_map

# ap.py imports its sibling degenerate.py; naming it here makes evaluate.load copy it too (no comment on import lines:
# evaluate reads a trailing comment as a download URL)
from .degenerate import mostly_tied

_COPIED_SIBLINGS = (mostly_tied,)  # keeps the degenerate.py import (and so evaluate's copy of it)

_DESCRIPTION = """FIVR mAP for Duplicate (ND+DS), Complementary (ND+DS+CS) and Incident (ND+DS+CS+IS) Scene Video
Retrieval. A query without positives for a task is left out of that task's mean."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of lists of float, the scores of each query's database items.
    references: list of lists of str, the FIVR label of each item ("" when unrelated).
Returns:
    DSVR, CSVR, ISVR: mAP (None when no query has a positive for the task).
Example:
    >>> metric = evaluate.load("evaluation/metrics/fivr_map")
    >>> metric.compute(predictions=[[0.9, 0.5, 0.1]], references=[["", "ND", "IS"]])
    {'DSVR': 0.5, 'CSVR': 0.5, 'ISVR': 0.5833333333333333}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FivrMap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references):
        return fivr_task_map(predictions, references)
