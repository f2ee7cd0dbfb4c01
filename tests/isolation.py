"""Prefix for subprocess scripts that must run like a user who has not installed vidtempo.

`BLOCK_VIDTEMPO + script` raises ImportError for every `vidtempo` module in the child process and checks
that the block works, so a trust_remote_code load there proves the saved folder is self-contained. Its one
home is `vidtempo.hub_cards.reload_check` (the check publishing runs).
"""

from vidtempo.hub_cards.reload_check import BLOCK_VIDTEMPO

__all__ = ["BLOCK_VIDTEMPO"]
