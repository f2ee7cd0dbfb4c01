"""Run transformers' own model test suite (`ModelTesterMixin`, `ConfigTester`) against vidtempo models.

The suite is not in the transformers wheel; it ships in the transformers **sdist**. On first use this
module downloads the sdist matching the installed transformers version
(`pip download --no-binary :all: --no-deps transformers==X`), extracts only its top-level `tests/*.py`
files into the git-ignored cache `<repo>/.cache/transformers-tests/<version>/transformers_tests/`, and
adds minimal stand-ins for the three helper modules the suite imports but the sdist does not contain:

- `exporters.test_export.ExportTesterMixin`  (empty mixin: no torch.export tests are run),
- `generation.test_utils.GenerationTesterMixin` (empty mixin: our models do not generate),
- `utils.test_configuration_utils.config_common_kwargs` (the generic config kwargs checked by
  `ConfigTester.check_config_arguments_init`).

The cache is built in a temporary folder and moved into place atomically under a file lock, so
concurrent pytest workers are safe; later runs reuse it. If the download is impossible (no network to
the package index) importing the suite fails with a `RuntimeError` that says so. transformers' test
files are never copied into the repository.

Usage, from a test module in `tests/conformance/` (the folder is a package)::

    import unittest
    from ._suite import load_suite

    suite = load_suite()
    ModelTesterMixin, ConfigTester = suite.ModelTesterMixin, suite.ConfigTester
    floats_tensor, random_attention_mask = suite.floats_tensor, suite.random_attention_mask

    class MyModelTest(ModelTesterMixin, unittest.TestCase):
        all_model_classes = (MyModel,)
        ...

See `test_tca_conformance.py` for a complete model tester.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
import warnings
from pathlib import Path
from types import SimpleNamespace

import transformers

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = REPO_ROOT / ".cache" / "transformers-tests"
PACKAGE_NAME = "transformers_tests"  # the sdist's `tests` package, renamed so it cannot clash with ours

_STANDINS = {
    "exporters/__init__.py": "",
    "exporters/test_export.py": (
        '"""vidtempo stand-in: the real module runs torch.export tests, not part of our conformance run."""\n\n\n'
        "class ExportTesterMixin:\n"
        "    pass\n"
    ),
    "generation/__init__.py": "",
    "generation/test_utils.py": (
        '"""vidtempo stand-in: our models have no `generate`, so no generation tests."""\n\n\n'
        "class GenerationTesterMixin:\n"
        "    pass\n"
    ),
    "utils/__init__.py": "",
    "utils/test_configuration_utils.py": (
        '"""vidtempo stand-in: generic PreTrainedConfig kwargs that every config must store as given."""\n\n'
        "config_common_kwargs = {\n"
        '    "return_dict": False,\n'
        '    "output_hidden_states": True,\n'
        '    "output_attentions": True,\n'
        '    "dtype": "float16",\n'
        '    "chunk_size_feed_forward": 5,\n'
        '    "architectures": ["BertModel"],\n'
        '    "id2label": {0: "label"},\n'
        '    "label2id": {"label": "0"},\n'
        '    "problem_type": "regression",\n'
        "}\n"
    ),
}


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download_sdist(version: str, destination: Path, cache_root: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "--no-build-isolation",
        "--disable-pip-version-check", f"transformers=={version}", "-d", str(destination),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    archives = sorted(destination.glob("transformers-*.tar.gz"))
    if result.returncode != 0 or not archives:
        raise RuntimeError(
            f"Cannot fetch transformers' test suite: `{' '.join(command)}` failed (exit {result.returncode}). "
            "The conformance tests need the transformers sdist from the package index (network access) "
            f"or an existing cache at {cache_root}.\n--- pip output ---\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return archives[0]


def _extract_tests(archive: Path, package_dir: Path) -> None:
    """Extract only `<sdist>/tests/*.py` (the common testers) into `package_dir`."""
    package_dir.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) == 3 and parts[1] == "tests" and parts[2].endswith(".py") and member.isfile():
                source = tar.extractfile(member)
                (package_dir / parts[2]).write_bytes(source.read())
    if not (package_dir / "test_modeling_common.py").is_file():
        raise RuntimeError(
            f"{archive} has no tests/test_modeling_common.py: cannot build the conformance suite"
        )
    (package_dir / "__init__.py").write_text("")
    for relative, text in _STANDINS.items():
        target = package_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def fetch_transformers_tests(version: str | None = None, cache_root: Path = CACHE_ROOT) -> Path:
    """Return the cache folder holding the `transformers_tests` package, downloading it once if needed."""
    version = version or transformers.__version__
    cache_root = Path(cache_root)
    final = cache_root / version
    if (final / PACKAGE_NAME / "test_modeling_common.py").is_file():
        return final
    with _file_lock(cache_root / f".{version}.lock"):
        if (final / PACKAGE_NAME / "test_modeling_common.py").is_file():  # built by another process meanwhile
            return final
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=cache_root))
        try:
            archive = _download_sdist(version, staging / "download", cache_root)
            _extract_tests(archive, staging / "tree" / PACKAGE_NAME)
            if final.exists():  # a broken earlier attempt
                shutil.rmtree(final)
            os.replace(staging / "tree", final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def load_suite(version: str | None = None) -> SimpleNamespace:
    """Make transformers' common testers importable and return the pieces model tests need.

    Returns a namespace with `ModelTesterMixin`, `ConfigTester`, `floats_tensor`, `ids_tensor`,
    `random_attention_mask`, `_config_zero_init` and the two modules themselves (`modeling_common`,
    `configuration_common`).
    """
    root = str(fetch_transformers_tests(version))
    if root not in sys.path:
        sys.path.insert(0, root)
    modeling_common = importlib.import_module(f"{PACKAGE_NAME}.test_modeling_common")
    configuration_common = importlib.import_module(f"{PACKAGE_NAME}.test_configuration_common")
    return SimpleNamespace(
        ModelTesterMixin=modeling_common.ModelTesterMixin,
        ConfigTester=configuration_common.ConfigTester,
        floats_tensor=modeling_common.floats_tensor,
        ids_tensor=modeling_common.ids_tensor,
        random_attention_mask=modeling_common.random_attention_mask,
        _config_zero_init=modeling_common._config_zero_init,
        modeling_common=modeling_common,
        configuration_common=configuration_common,
    )


def skip_not_applicable(test_class: type, not_applicable: dict[str, str]) -> list[str]:
    """Replace each named suite test of `test_class` with a skip that gives the reason.

    A name the installed suite no longer has does not take the module down: it becomes a skipped test of its
    own whose reason says the skip entry is stale (visible in pytest's `-ra` summary), and a warning names it.
    Returns the stale names.
    """
    stale = []
    for name, reason in not_applicable.items():
        if not hasattr(test_class, name):
            stale.append(name)
            reason = (
                f"stale skip entry: transformers {transformers.__version__}'s suite has no {name!r} "
                f"(it was skipped because: {reason}); remove it from the skip list"
            )
        setattr(test_class, name, _skipped(reason))
    if stale:
        warnings.warn(
            f"{test_class.__name__}: {len(stale)} skip-list entries name tests that transformers "
            f"{transformers.__version__}'s suite no longer has: {', '.join(stale)}",
            stacklevel=2,
        )
    return stale


def _skipped(reason: str):
    @unittest.skip(reason=reason)
    def test(self):
        pass

    return test
