"""The machinery that fetches transformers' test suite: extraction, cache reuse, and a clear failure."""

import io
import tarfile

import pytest

from . import _suite


def make_sdist(path, files: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"transformers-9.9.9/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_extract_keeps_only_top_level_test_files_and_adds_standins(tmp_path):
    archive = tmp_path / "transformers-9.9.9.tar.gz"
    make_sdist(
        archive,
        {
            "tests/test_modeling_common.py": "from .exporters.test_export import ExportTesterMixin\n",
            "tests/test_configuration_common.py": "from .utils.test_configuration_utils import config_common_kwargs\n",
            "tests/models/bert/test_modeling_bert.py": "raise AssertionError('must not be extracted')\n",
            "src/transformers/__init__.py": "",
            "tests/fixtures/data.txt": "not python\n",
        },
    )
    package = tmp_path / "tree" / _suite.PACKAGE_NAME
    _suite._extract_tests(archive, package)
    files = sorted(str(path.relative_to(package)) for path in package.rglob("*") if path.is_file())
    assert files == sorted(
        [
            "__init__.py",
            "test_modeling_common.py",
            "test_configuration_common.py",
            *_suite._STANDINS,
        ]
    )
    namespace = {}
    exec((package / "utils" / "test_configuration_utils.py").read_text(), namespace)
    assert namespace["config_common_kwargs"]["dtype"] == "float16"


def test_extract_rejects_an_archive_without_the_suite(tmp_path):
    archive = tmp_path / "transformers-9.9.9.tar.gz"
    make_sdist(archive, {"tests/test_other.py": ""})
    with pytest.raises(RuntimeError, match="has no tests/test_modeling_common.py"):
        _suite._extract_tests(archive, tmp_path / "tree" / _suite.PACKAGE_NAME)


def test_existing_cache_is_reused_without_download(tmp_path, monkeypatch):
    cached = tmp_path / "9.9.9" / _suite.PACKAGE_NAME
    cached.mkdir(parents=True)
    (cached / "test_modeling_common.py").write_text("")

    def no_download(*args, **kwargs):
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(_suite, "_download_sdist", no_download)
    assert _suite.fetch_transformers_tests("9.9.9", cache_root=tmp_path) == tmp_path / "9.9.9"


def test_impossible_download_fails_with_a_clear_message(tmp_path):
    # An invalid requirement makes pip fail without touching the network.
    with pytest.raises(
        RuntimeError, match="Cannot fetch transformers' test suite.*transformers==not a version"
    ):
        _suite.fetch_transformers_tests("not a version", cache_root=tmp_path)
    assert not (tmp_path / "not a version").exists()
    assert [path.name for path in tmp_path.iterdir()] == [".not a version.lock"]  # staging cleaned up


def test_a_stale_skip_entry_is_reported_not_fatal():
    """A skip list naming a test the installed suite no longer has (transformers 5.24 dropped
    `test_tied_head_has_a_tp_plan_entry`) must not take the module down: the entry becomes a skipped test whose
    reason says it is stale, and a warning names it."""
    import unittest

    class Suite(unittest.TestCase):
        def test_present(self):
            raise AssertionError("must be skipped")

    with pytest.warns(UserWarning, match=r"1 skip-list entries .*test_gone"):
        stale = _suite.skip_not_applicable(Suite, {"test_present": "not ours", "test_gone": "old reason"})
    assert stale == ["test_gone"]
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Suite).run(result)
    reasons = dict((test.id().rsplit(".", 1)[-1], reason) for test, reason in result.skipped)
    assert reasons["test_present"] == "not ours" and not result.failures
    assert reasons["test_gone"].startswith("stale skip entry") and "old reason" in reasons["test_gone"]
