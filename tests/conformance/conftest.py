"""Declare the pytest markers used by transformers' fetched test suite (the repo runs `--strict-markers`)."""

import re

from ._suite import PACKAGE_NAME, fetch_transformers_tests


def pytest_configure(config):
    # Called only when this folder is collected: fetch the suite (once, cached) and register every
    # `mark.<name>` it uses, so that new transformers versions with new markers need no edit here.
    try:
        package = fetch_transformers_tests() / PACKAGE_NAME
    except RuntimeError:
        return  # the suite cannot be fetched: `load_suite()` in each test module reports why
    names = set()
    for path in package.glob("test_*_common.py"):
        names.update(re.findall(r"\bmark\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))
    for name in sorted(names):
        config.addinivalue_line("markers", f"{name}: marker of transformers' own test suite")
