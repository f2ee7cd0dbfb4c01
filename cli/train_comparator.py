"""`vidtempo-train-comparator`: the learned video comparator's training (moves here from `training/train_comparator.py`; see `cli/_contract.py`)."""

from ..training.train_comparator import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
