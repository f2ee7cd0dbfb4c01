"""`vidtempo-convert`: the bundled offline networks as model folders (moves here from `processing/offline_models.py`; see `cli/_contract.py`)."""

from ..processing.offline_models import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
