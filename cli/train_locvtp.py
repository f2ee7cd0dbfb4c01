"""`vidtempo-train-locvtp`: LocVTP pre-training (moves here from `training/train_locvtp.py`; see `cli/_contract.py`)."""

from ..training.train_locvtp import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
