"""`vidtempo-publish`: model cards and Hub publishing (moves here from `hub_cards/publish.py`; see `cli/_contract.py`)."""

from ..hub_cards.publish import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
