"""`vidtempo-extract` (and `fit-pca`) and `vidtempo-convert` follow `cli/_contract.py`: `--help` imports no torch,
usage errors exit 2, runtime errors are one `error:` line with exit 1."""

import subprocess
import sys

import pytest

from vidtempo.cli import convert, extract


@pytest.mark.parametrize(
    "module, argv",
    [
        ("vidtempo.cli.extract", ["--help"]),
        ("vidtempo.cli.extract", ["fit-pca", "--help"]),
        ("vidtempo.cli.convert", ["--help"]),
    ],
)
def test_help_imports_no_torch(module, argv):
    script = (
        f"import sys\nfrom {module} import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'numpy', 'accelerate') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


def test_the_cli_choices_match_the_library():
    from vidtempo.processing.extract import DEFAULT_MODEL
    from vidtempo.processing.offline_models import INSTALL_HINT
    from vidtempo.processing.video_reader import BACKENDS

    assert extract.BACKENDS == BACKENDS and extract.DEFAULT_MODEL == DEFAULT_MODEL
    assert convert.INSTALL_HINT == INSTALL_HINT


@pytest.mark.parametrize(
    "argv, message",
    [
        (["v.mp4", "--output", "o", "--fps", "0"], "argument --fps: expected a positive number"),
        (["v.mp4", "--output", "o", "--min-duration", "-1"], "argument --min-duration: expected 0 or more"),
        (["v.mp4", "--output", "o", "--num-workers", "-1"], "argument --num-workers: expected 0 or more"),
        (["v.mp4"], "the following arguments are required: --output"),
        (["fit-pca", "raw", "--model", "m", "--save-model", "s", "--dim", "0"], "argument --dim"),
    ],
)
def test_extract_usage_errors_exit_2(argv, message, capsys):
    try:
        code = extract.main(argv)  # a check after parsing returns 2
    except SystemExit as exit:  # argparse's own exits 2
        code = exit.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_runtime_errors_are_one_line(tmp_path, capsys):
    code = extract.main(
        [
            "fit-pca",
            str(tmp_path / "missing"),
            "--model",
            str(tmp_path / "nomodel"),
            "--save-model",
            str(tmp_path / "s"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: ") and "nomodel" in err[0]


def test_convert_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exit:
        convert.main(["resnet", "out"])
    assert exit.value.code == 2 and "invalid choice: 'resnet'" in capsys.readouterr().err
