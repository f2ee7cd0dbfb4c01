"""The trainers' console scripts (`cli/train_*.py`): one flag builder with help for every flag and the input
formats, a --help that imports no torch, consistent flag names, clean errors with counts for unusable inputs,
and the same weights from `python -m` and `accelerate launch`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from factories import make_synthetic

from vidtempo.cli import train_comparator, train_locvtp, train_tca

TRAINERS = {"tca": train_tca, "locvtp": train_locvtp, "comparator": train_comparator}
CONFIG = Path(__file__).resolve().parents[2] / "training" / "configs" / "locvtp_tiny.yaml"


def test_help_describes_every_flag_and_the_input_formats():
    for name, module in TRAINERS.items():
        parser = module.build_parser()
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and not action.help.startswith(" (default"), (name, action.option_strings)
        text = parser.format_help()
        if name == "locvtp":
            assert "captions file format (--captions)" in text and "video_path  the video" in text
        else:
            assert "pairs file formats (--pairs)" in text and '{"video_pairs": [{"videos"' in text
    tca_help = train_tca.build_parser().format_help()
    assert (
        "--loss {circle,infonce,triplet}" in tca_help and "circle loss margin m (default: 0.25)" in tca_help
    )


def test_help_imports_no_torch():
    code = (
        "import sys\nfrom vidtempo.cli import train_tca, train_locvtp, train_comparator\n"
        "for m in (train_tca, train_locvtp, train_comparator):\n"
        "    try:\n        m.main(['--help'])\n    except SystemExit:\n        pass\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'accelerate', 'datasets')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_flag_names_are_the_same_in_every_trainer():
    from vidtempo.cli._train_flags import config_from_args
    from vidtempo.training.options import ComparatorTrainConfig, LocVTPTrainConfig, TrainConfig

    classes = {"tca": TrainConfig, "locvtp": LocVTPTrainConfig, "comparator": ComparatorTrainConfig}
    required = {"tca": ["--descriptors", "d", "--pairs", "p"], "locvtp": ["--captions", "c"]}
    required["comparator"] = required["tca"]
    for name, module in TRAINERS.items():
        argv = [
            *required[name],
            "--output",
            "runs/x",
            "--seed",
            "3",
            "--num-workers",
            "2",
            "--num-threads",
            "1",
        ]
        config = config_from_args(classes[name], module.build_parser().parse_args(argv))
        assert (config.output_dir, config.seed, config.num_workers, config.num_threads) == ("runs/x", 3, 2, 1)
        if name != "comparator":  # the comparator has no checkpoints
            parse = module.build_parser().parse_args
            assert config_from_args(classes[name], parse([*required[name], "--resume"])).resume == "latest"
            assert (
                config_from_args(classes[name], parse([*required[name], "--resume", "c/s"])).resume == "c/s"
            )


def test_bad_values_are_usage_errors(tmp_path, capsys):
    assert train_tca.main(["--descriptors", "d", "--pairs", "p", "--batch-size", "0"]) == 2
    assert "TrainConfig.batch_size must be positive, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        train_tca.main(["--descriptors", "d", "--pairs", "p", "--loss", "hinge"])
    assert caught.value.code == 2
    assert train_locvtp.main(["--captions", "c", "--num-threads", "0"]) == 2


def test_no_usable_pair_exits_1_with_the_counts(tmp_path, capsys):
    desc, _, _, _ = make_synthetic(tmp_path, num_groups=4, num_distractors=4)
    (tmp_path / "other.csv").write_text("query,match\n" + "".join(f"x{i},y{i}\n" for i in range(5)))
    argv = [
        "--descriptors",
        str(desc),
        "--pairs",
        str(tmp_path / "other.csv"),
        "--output",
        str(tmp_path / "o"),
    ]
    with pytest.warns(UserWarning, match="ids"):
        assert train_tca.main([*argv, "--report-to", "none", "--no-progress"]) == 1
    captured = capsys.readouterr()
    (line,) = [x for x in captured.err.splitlines() if x.startswith("error:")]
    assert "no usable training pairs: 0 of the 5 pairs" in line and "(16 videos)" in line
    assert "Traceback" not in captured.err and captured.out == ""


def _captions(tmp_path, videos: list[str]) -> Path:
    path = tmp_path / "captions.csv"
    rows = "".join(f"{v},0,1,a man opens door {i},train\n" for i, v in enumerate(videos))
    path.write_text("video_path,start,end,caption,split\n" + rows)
    return path


def test_locvtp_with_every_video_unreadable_fails_and_saves_no_model(tmp_path, capsys):
    for name in "abcd":
        (tmp_path / f"{name}.mp4").write_bytes(b"not a video")
    captions = _captions(tmp_path, [f"{n}.mp4" for n in "abcd"])
    out = tmp_path / "run"
    common = ["--config", str(CONFIG), "--output", str(out), "--batch-size", "2", "--epochs", "1"]
    assert train_locvtp.main(["--captions", str(captions), *common, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "error: no training step: 4 of the 4 rows" in err and "no model saved" in err
    assert not (out / "model").exists() and len((out / "failed_rank0.jsonl").read_text().splitlines()) == 4
    missing = (
        _captions(tmp_path / "m", ["gone1.mp4", "gone2.mp4"]) if (tmp_path / "m").mkdir() is None else None
    )
    assert (
        train_locvtp.main(["--captions", str(missing), *common[:3], str(tmp_path / "run2"), *common[4:]]) == 1
    )
    assert "no usable videos: none of the 2 videos named in" in capsys.readouterr().err


TINY = ["--hidden-size", "16", "--num-attention-heads", "4", "--intermediate-size", "32", "--epochs", "1",
        "--batch-size", "8", "--negatives-per-anchor", "2", "--bank-size", "16", "--num-frames", "16",
        "--max-steps", "3", "--dropout", "0.5", "--val-fraction", "0", "--report-to", "none", "--no-progress"]  # fmt: skip


@pytest.mark.slow
def test_python_m_and_accelerate_launch_give_the_same_weights(tmp_path):
    """Today `accelerate launch` sets OMP_NUM_THREADS and `python -m` leaves torch's default: the trainer now
    sets the thread count itself, so both launchers run the same float reductions."""
    desc, pairs, _, _ = make_synthetic(tmp_path, num_groups=8, num_distractors=8)
    base = ["-m", "vidtempo.training.train_tca", "--descriptors", str(desc), "--pairs", str(pairs), *TINY]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    accelerate = Path(sys.executable).with_name("accelerate")
    outputs = {}
    for name, launcher in {"python": [sys.executable], "accelerate": [str(accelerate), "launch", "--cpu",
                                                                       "--num_processes", "1"]}.items():  # fmt: skip
        out = tmp_path / name
        result = subprocess.run([*launcher, *base, "--output", str(out)], env=env, capture_output=True,
                                text=True, timeout=300)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        assert len([x for x in result.stdout.splitlines() if x.startswith("{")]) == 1  # printed once
        outputs[name] = (out / "model" / "model.safetensors").read_bytes()
        assert json.loads((out / "metrics.json").read_text())["global_step"] == 3
    assert outputs["python"] == outputs["accelerate"]
