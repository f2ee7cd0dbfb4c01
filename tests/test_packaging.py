"""The project builds as a wheel of one import package, `vidtempo`, that works from a clean venv."""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO_ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", ".cache", "__pycache__", "*.pyc", "build", "dist", "*.egg-info", "outputs", "runs", ".pytest_cache",
    ".ruff_cache", "docs", "tests",
)  # fmt: skip


def declared_packages() -> list[str]:
    with open(REPO_ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["tool"]["setuptools"]["packages"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy so the shared checkout gets no build/ or egg-info churn.
    work = tmp_path_factory.mktemp("packaging")
    source = work / "src"
    shutil.copytree(REPO_ROOT, source, ignore=NOT_SOURCES)
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(work / "dist"),
        ".",
    ]
    result = subprocess.run(command, cwd=source, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (built,) = (work / "dist").glob("vidtempo-*.whl")
    return built


@pytest.mark.slow
def test_wheel_holds_only_the_vidtempo_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    dist_info = [name for name in top_level if name.endswith(".dist-info")]
    assert len(dist_info) == 1 and dist_info[0].startswith("vidtempo-")
    assert top_level - set(dist_info) == {"vidtempo"}, f"unexpected top-level entries: {sorted(top_level)}"
    assert "vidtempo/modeling/modeling_tca.py" in names
    assert "vidtempo/modeling/configuration_tca.py" in names
    for (
        package
    ) in declared_packages():  # code packages hold modules, data packages (configs, annotations) data
        folder = package.replace(".", "/") + "/"
        assert any(name.startswith(folder) for name in names), f"{package} missing"
    for data in (
        "vidtempo/evaluation/data/fivr.json.gz",
        "vidtempo/evaluation/data/fivr200k_official_annotation.json.gz",
        "vidtempo/training/configs/tca_vcdb.yaml",
        "vidtempo/evaluation/metrics/fivr_map/fivr_map.py",
        "vidtempo/hub_cards/tca_card.md",
    ):
        assert data in names, f"{data} missing from the wheel"
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info[0]}/entry_points.txt").decode()
    assert "vidtempo-train-tca" in entry_points


@pytest.mark.slow
def test_wheel_installs_and_imports_from_a_clean_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # Dependencies (torch, transformers, ...) come from the project's environment through a .pth file;
    # a plain path line does not run that folder's own .pth files, so the editable vidtempo stays invisible.
    venv_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (venv_site / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "--no-deps",
        "--no-index",
        str(wheel),
    ]
    result = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    check = (
        "import vidtempo.modeling\n"
        "from vidtempo.modeling import TCAConfig, TCAModel\n"
        "model = TCAModel(TCAConfig(input_size=8, hidden_size=8, num_attention_heads=2, intermediate_size=8))\n"
        "print(vidtempo.modeling.__file__)\n"
        "print(type(model).__module__)\n"
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(python), "-c", check], cwd=outside, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    module_file, class_module = result.stdout.split()[-2:]
    assert Path(module_file).resolve().is_relative_to(venv_site.resolve()), module_file
    assert not Path(module_file).resolve().is_relative_to(REPO_ROOT), module_file
    assert class_module == "vidtempo.modeling.modeling_tca"
