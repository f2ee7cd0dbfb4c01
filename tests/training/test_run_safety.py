"""Safe re-runs of the trainers (issue 17): a used run folder is refused unless --force (which clears the
old run), a resume with result-changing settings is refused by name, zero usable items stop the run with the
counts, thread counts follow the cores, --max-steps capped by epochs says so, the library prints nothing."""

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch
from factories import make_synthetic, tiny_config

from vidtempo.training.loop import default_num_threads, settings_differences
from vidtempo.training.options import RESUME_SAFE, TCA_LOSSES, LocVTPTrainConfig, TrainConfig
from vidtempo.training.train_tca import train


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("safety"), num_groups=12, num_distractors=24)


def small(root, synthetic, **overrides):
    desc, pairs, _, _ = synthetic
    values = dict(epochs=1, batch_size=8, bank_size=32, val_fraction=0.0, num_threads=1) | overrides
    return tiny_config(root, desc, pairs, **values)


def test_a_used_output_folder_is_refused_and_force_clears_the_old_run(synthetic, tmp_path):
    first = train(small(tmp_path, synthetic, save_every=1, keep_last=5))
    checkpoints = Path(first["model_dir"]).parent / "checkpoints"
    assert [p.name for p in sorted(checkpoints.iterdir())] == [f"step_{i:08d}" for i in (1, 2, 3, 4)]
    with pytest.raises(FileExistsError, match=r"out is not empty \(checkpoints, .*--resume.*--force"):
        train(small(tmp_path, synthetic, save_every=1, seed=1))
    # --force: a new run of 2 steps, checkpointed every 2 steps; the old run's step_1, 3 and 4 are gone, so
    # `--resume latest` can only find the new run's own checkpoint
    second = train(small(tmp_path, synthetic, save_every=2, max_steps=2, seed=1, force=True))
    assert [p.name for p in checkpoints.iterdir()] == ["step_00000002"]
    assert second["global_step"] == 2 and second["losses"] != first["losses"][:2]
    state = json.loads((checkpoints / "step_00000002" / "train_state.json").read_text())
    assert state["config"]["seed"] == 1


def test_resume_refuses_result_changing_settings_and_allows_harmless_ones(synthetic, tmp_path):
    config = small(tmp_path, synthetic, save_every=1, max_steps=1)
    train(config)
    for change, named in [
        ({"batch_size": 4}, "batch_size: 8 -> 4"),
        ({"learning_rate": 1e-2}, "learning_rate: 0.003 -> 0.01"),
        ({"loss": "infonce"}, "loss: 'circle' -> 'infonce'"),
        ({"seed": 5, "dropout": 0.3}, "dropout: 0.1 -> 0.3; seed: 0 -> 5"),
    ]:
        with pytest.raises(
            ValueError, match="settings differ from the checkpoint's in " + named.replace("(", r"\(")
        ):
            train(dataclasses.replace(config, resume="latest", max_steps=2, **change))
    resumed = train(
        dataclasses.replace(config, resume="latest", max_steps=2, log_every=1, num_workers=1, num_threads=2)
    )
    assert resumed["global_step"] == 2


def test_settings_differences_by_hand():
    saved = {"batch_size": 8, "seed": 0, "log_every": 10, "num_workers": 0, "pairs": "/a.json"}
    current = {"batch_size": 8, "seed": 0, "log_every": 1, "num_workers": 4, "pairs": "/b.json"}
    assert settings_differences(saved, current) == ["pairs: '/a.json' -> '/b.json'"]
    assert {"log_every", "num_workers", "num_threads", "max_steps", "resume", "force"} <= RESUME_SAFE
    assert not {"batch_size", "learning_rate", "loss", "seed", "model_name_or_path", "epochs"} & RESUME_SAFE


def test_no_usable_pair_stops_with_the_counts(synthetic, tmp_path):
    desc, _, _, _ = synthetic
    (tmp_path / "other.json").write_text(json.dumps([[f"x{i}", f"y{i}"] for i in range(30)]))
    config = tiny_config(tmp_path, desc, tmp_path / "other.json", num_threads=1)
    with pytest.warns(UserWarning), pytest.raises(ValueError) as caught:
        train(config)
    message = str(caught.value)
    assert "0 of the 30 pairs" in message and "(60 videos)" in message and "lower batch_size" not in message
    with pytest.raises(
        ValueError, match=r"^\d+ training pairs \(36 of the 36 pairs .*minimum, one global batch of 40 "
    ):
        train(small(tmp_path / "b", synthetic, batch_size=40, val_fraction=0.1))


def test_default_threads_follow_the_cores(synthetic, tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert default_num_threads(0, 1) == 8
    assert default_num_threads(2, 1) == 6  # threads + workers <= cores
    assert default_num_threads(1, 2) == 3  # 2 processes x (3 + 1) = 8
    assert default_num_threads(6, 4) == 1  # at least one
    before = torch.get_num_threads()
    try:
        train(small(tmp_path, synthetic, max_steps=1, num_threads=None, num_workers=2))
        assert torch.get_num_threads() == 6
        train(small(tmp_path / "b", synthetic, max_steps=1, num_threads=3))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_max_steps_beyond_the_epochs_is_capped_with_a_message(synthetic, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="vidtempo.training.loop"):
        metrics = train(small(tmp_path, synthetic, max_steps=50))
    assert metrics["global_step"] == 4  # 1 epoch of 36 pairs in batches of 8
    assert (
        "--max-steps 50 is more than 1 epochs x 4 steps per epoch: training stops after 4 steps"
        in caplog.text
    )


def test_the_library_prints_nothing(synthetic, tmp_path, capsys):
    config = small(
        tmp_path, synthetic, save_every=1, max_steps=1, val_fraction=0.3, load_best_model_at_end=True
    )
    train(config)
    train(dataclasses.replace(config, resume="latest", max_steps=2))  # resumed: logged, not printed
    assert capsys.readouterr().out == ""


def test_config_choices_match_the_implementations():
    from vidtempo.training.tca_losses import LOSSES

    assert sorted(TCA_LOSSES) == sorted(LOSSES)
    for cls in (TrainConfig, LocVTPTrainConfig):
        names = {f.name for f in dataclasses.fields(cls)}
        assert {"output_dir", "resume", "force", "num_workers", "num_threads", "seed"} <= names


def test_shipped_configs_name_no_machine_path():
    import yaml

    for path in sorted((Path(__file__).parents[2] / "training" / "configs").glob("*.yaml")):
        for key, value in yaml.safe_load(path.read_text()).items():
            if isinstance(value, str):
                assert not value.startswith(("/", "~")), (path.name, key, value)
