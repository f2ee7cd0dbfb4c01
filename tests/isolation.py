"""Prefix for subprocess scripts that must run like a user who has not installed vidtempo.

`BLOCK_VIDTEMPO + script` raises ImportError for every `vidtempo` module in the child process and checks
that the block works, so a trust_remote_code load there proves the saved folder is self-contained.
"""

BLOCK_VIDTEMPO = """
import importlib.abc
import sys


class _BlockVidtempo(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "vidtempo" or name.startswith("vidtempo."):
            raise ImportError(f"vidtempo is blocked in this process ({name})")
        return None


sys.meta_path.insert(0, _BlockVidtempo())
try:
    import vidtempo.modeling  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the import blocker failed")
"""
