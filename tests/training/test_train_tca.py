"""TCA training: data, config/CLI, learning on structured synthetic data, exact resume, 2-process bank."""

import csv
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from factories import make_synthetic, tiny_config

from vidtempo.training.tca_data import (
    EpochPermutationSampler,
    PairList,
    TCAPairDataset,
    collate_pairs,
    crop_or_pad,
    read_pairs,
    resolve_pairs,
    split_pairs,
)
from vidtempo.training.train_tca import TrainConfig, find_checkpoint, train, validation_map


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("synthetic"))


# ------------------------------------------------------------------------------------------------ data


def test_read_pairs_formats(tmp_path):
    vcdb = {"video_pairs": [{"overlap": [1, 1], "videos": ["a", "b"]}], "negs": ["n1", "n2"], "index": []}
    (tmp_path / "v.json").write_text(json.dumps(vcdb))
    got = read_pairs(tmp_path / "v.json")
    assert got.pairs == [("a", "b")] and got.distractors == ["n1", "n2"]
    with (tmp_path / "p.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["query", "match", "note"], ["x", "y", "z"], ["u", "v", ""]])
    assert read_pairs(tmp_path / "p.csv").pairs == [("x", "y"), ("u", "v")]
    (tmp_path / "l.json").write_text(json.dumps([["p", "q"], {"videos": ["r", "s"]}]))
    (tmp_path / "negs.txt").write_text("d1\nd2\n\n")
    got = read_pairs(tmp_path / "l.json", tmp_path / "negs.txt")
    assert got.pairs == [("p", "q"), ("r", "s")] and got.distractors == ["d1", "d2"]
    (tmp_path / "bad.json").write_text(json.dumps([["only-one"]]))
    with pytest.raises(ValueError, match=r"bad.json: pair #0"):
        read_pairs(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="pairs file not found"):
        read_pairs(tmp_path / "missing.json")


def test_resolve_pairs_reports_missing_ids_once_and_skips_them():
    pairs = PairList([("a", "b"), ("b", "a"), ("a", "zz1"), ("c", "c"), ("c", "b")], ["n1", "zz2", "a"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept, negs = resolve_pairs(pairs, {"a", "b", "c", "n1"})
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "1 of 4 pair video ids" in messages[0] and "zz1" in messages[0]
    assert "1 of 3 distractor ids" in messages[1] and "zz2" in messages[1]
    assert kept == [("a", "b"), ("c", "b")]  # duplicate (b, a) and self-pair (c, c) dropped
    assert negs == ["n1"]  # "a" is in a pair, so it is not a distractor
    _, default_negs = resolve_pairs(PairList([("a", "b")], None), {"a", "b", "c", "n1"})
    assert default_negs == ["c", "n1"]


def test_split_pairs_holds_out_whole_groups():
    pairs = [(f"g{g}_{i}", f"g{g}_{j}") for g in range(10) for i in range(3) for j in range(i + 1, 3)]
    train_pairs, val_pairs = split_pairs(pairs, 0.2, seed=1)
    assert len(val_pairs) == 6 and len(train_pairs) == 24
    train_ids = {v for p in train_pairs for v in p}
    assert not train_ids & {v for p in val_pairs for v in p}
    assert split_pairs(pairs, 0.2, seed=1) == (train_pairs, val_pairs)


def test_crop_or_pad_and_collate():
    video = np.arange(10 * 2, dtype=np.float16).reshape(10, 2)
    padded, length = crop_or_pad(video, 16, np.random.default_rng(0))
    assert length == 10 and np.array_equal(padded[:10], video) and not padded[10:].any()
    starts = set()
    for seed in range(30):
        crop, length = crop_or_pad(video, 4, np.random.default_rng(seed))
        start = int(crop[0, 0]) // 2
        assert length == 4 and np.array_equal(crop, video[start : start + 4])  # contiguous window
        starts.add(start)
    assert starts == set(range(7))  # every start position reachable
    descriptors = {"a": video, "b": video[:3], "n": video[:5]}
    dataset = TCAPairDataset(descriptors, [("a", "b")], ["n"], num_frames=6, num_negatives=2, seed=0)
    batch = collate_pairs([dataset[0], dataset[0]])
    assert batch["anchor"].shape == (2, 6, 2) and batch["negatives"].shape == (4, 6, 2)
    lengths = sorted([batch["anchor_mask"][0].sum().item(), batch["positive_mask"][0].sum().item()])
    assert lengths == [3, 6]
    assert batch["negatives_mask"].sum(dim=1).tolist() == [5, 5, 5, 5]
    # a padded frame is zero and masked out
    masked = batch["negatives"][batch["negatives_mask"] == 0]
    assert masked.abs().sum() == 0


def test_collate_pads_to_the_longest_clip_and_the_embeddings_do_not_change():
    """Short videos are padded to the batch's longest clip, not to num_frames; masked padding is invisible."""
    from vidtempo.modeling import TCAConfig, TCAModel

    rng = np.random.default_rng(0)
    descriptors = {k: rng.standard_normal((n, 8)).astype(np.float32) for k, n in zip("abcn", (3, 5, 4, 2))}
    dataset = TCAPairDataset(
        descriptors, [("a", "b"), ("c", "a")], ["n"], num_frames=64, num_negatives=2, seed=0
    )
    batch = collate_pairs([dataset[0], dataset[1]])
    assert batch["anchor"].shape == (2, 5, 8) and batch["negatives"].shape == (4, 5, 8)
    model = TCAModel(
        TCAConfig(input_size=8, hidden_size=8, num_attention_heads=2, intermediate_size=16)
    ).eval()
    frames, mask = batch["anchor"], batch["anchor_mask"]
    padded = torch.cat([frames, torch.full((2, 59, 8), 7.0)], 1)  # garbage in the masked tail
    padded_mask = torch.cat([mask, torch.zeros(2, 59, dtype=mask.dtype)], 1)
    with torch.no_grad():
        short = model(frame_features=frames, attention_mask=mask).video_embeds
        long = model(frame_features=padded, attention_mask=padded_mask).video_embeds
    torch.testing.assert_close(short, long, rtol=1e-5, atol=1e-6)


def test_dataset_and_sampler_are_reproducible():
    video = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float16)
    descriptors = {k: video for k in "abcdn"}
    dataset = TCAPairDataset(
        descriptors, [("a", "b"), ("c", "d")], ["n"], num_frames=8, num_negatives=1, seed=3
    )
    first = dataset[1]["features"]
    assert np.array_equal(first, dataset[1]["features"])
    dataset.set_epoch(1)
    assert not np.array_equal(first, dataset[1]["features"])
    sampler = EpochPermutationSampler(50, seed=2)
    order0 = list(sampler)
    assert sorted(order0) == list(range(50)) and order0 == list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != order0


# ------------------------------------------------------------------------------------------ config/CLI


def parse_config(argv):
    from vidtempo.cli._train_flags import config_from_args
    from vidtempo.cli.train_tca import build_parser

    return config_from_args(TrainConfig, build_parser().parse_args(argv))


def test_yaml_config_with_cli_overrides(tmp_path):
    from vidtempo.cli._contract import UsageError

    (tmp_path / "c.yaml").write_text("descriptors: d\npairs: p.json\nbatch_size: 8\nloss: infonce\n")
    config = parse_config(["--config", str(tmp_path / "c.yaml"), "--batch-size", "4", "--no-progress"])
    assert (config.batch_size, config.loss, config.progress, config.epochs) == (4, "infonce", False, 40)
    assert config.learning_rate == 1e-5 and config.weight_decay == 1e-4 and config.negatives_per_anchor == 16
    # a flag given with the dataclass default still overrides the YAML
    assert parse_config(["--config", str(tmp_path / "c.yaml"), "--batch-size", "64"]).batch_size == 64
    assert parse_config(["--descriptors", "d", "--pairs", "p", "--resume"]).resume == "latest"
    assert parse_config(["--descriptors", "d", "--pairs", "p", "--resume", "x/step_1"]).resume == "x/step_1"
    assert parse_config(["--descriptors", "d", "--pairs", "p", "--output", "o"]).output_dir == "o"
    (tmp_path / "bad.yaml").write_text("batchsize: 8\n")
    with pytest.raises(UsageError, match=r"bad.yaml: unknown keys \['batchsize'\]"):
        parse_config(["--config", str(tmp_path / "bad.yaml")])
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(descriptors="d", pairs="p", loss="hinge").validate()


def test_shipped_yaml_configs_parse():
    folder = Path(__file__).parents[2] / "training" / "configs"
    files = sorted(folder.glob("tca_*.yaml"))  # locvtp_*.yaml belong to the LocVTP trainer
    assert files
    for path in files:
        TrainConfig.from_yaml(path, descriptors="d", pairs="p").validate()


def test_help_runs():
    out = subprocess.run(
        [sys.executable, "-m", "vidtempo.training.train_tca", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--negatives-per-anchor" in out and "--resume" in out and "accelerate launch" in out


# ------------------------------------------------------------------------------------------- training


def fixed_batch_loss(model, descriptors, pairs, distractors, loss="infonce"):
    """Loss of `model` (eval mode) on fixed full-length pairs against fixed distractors."""
    from vidtempo.training.tca_losses import compute_loss, contrastive_similarities
    from vidtempo.training.train_tca import encode_videos

    a = encode_videos(model, [descriptors[p[0]] for p in pairs], 16, "cpu")
    p = encode_videos(model, [descriptors[p[1]] for p in pairs], 16, "cpu")
    n = encode_videos(model, [descriptors[d] for d in distractors], 16, "cpu")
    return compute_loss(loss, *contrastive_similarities(a, p, n), temperature=0.1).item()


def test_training_learns_structure_and_saves_loadable_model(synthetic, tmp_path):
    from transformers import AutoModel

    from vidtempo.modeling import TCAModel

    desc, pair_file, descriptors, pairs = synthetic
    config = tiny_config(
        tmp_path,
        desc,
        pair_file,
        loss="infonce",
        temperature=0.1,
        report_to="tensorboard",
        epochs=5,
        negatives_per_anchor=8,
        bank_size=256,
    )
    metrics = train(config)
    out = Path(config.output_dir)
    # validation mAP (full length, deterministic) clearly beats the untrained model
    initial, final = metrics["initial_val_map"], metrics["final_val_map"]
    assert final > initial + 0.05 and final > 1.25 * initial, metrics["validation"]
    # the saved model loads through the Auto classes with its code, and reproduces the final mAP
    loaded = AutoModel.from_pretrained(out / "model", trust_remote_code=True)
    assert loaded.config.model_type == "tca" and (out / "model" / "model.safetensors").is_file()
    torch.manual_seed(1)
    untrained = TCAModel(loaded.config)
    # the training loss on a fixed set of training pairs falls (same negatives, eval mode, both models)
    train_pairs = [tuple(p) for p in pairs[:30]]
    distractors = [k for k in descriptors if k.startswith("d")][:40]
    before = fixed_batch_loss(untrained.eval(), descriptors, train_pairs, distractors)
    after = fixed_batch_loss(loaded.eval(), descriptors, train_pairs, distractors)
    assert after < before - 0.5, (before, after)
    # the final validation equals a fresh evaluation of the saved model (deterministic, full length)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["final_val_map"] == pytest.approx(metrics["final_val_map"])
    assert any((out / "logs").rglob("events.out.tfevents*"))


def test_load_best_model_at_end_keeps_the_best_validation_weights(synthetic, tmp_path):
    from safetensors.torch import load_file

    desc, pair_file, _, _ = synthetic
    common = dict(epochs=2, batch_size=8, val_every=3, learning_rate=3e-3)
    metrics = train(tiny_config(tmp_path / "best", desc, pair_file, load_best_model_at_end=True, **common))
    curve = {v["step"]: v["val_map"] for v in metrics["validation"]}
    assert metrics["best_val_map"] == max(curve.values()) == curve[metrics["best_step"]]
    assert 0 < metrics["best_step"] < metrics["global_step"]  # the last step is not the best one here
    assert curve[metrics["global_step"]] < metrics["best_val_map"]
    # the same run stopped at the best step (training is deterministic) has exactly the weights in model/
    stopped = train(
        tiny_config(tmp_path / "stopped", desc, pair_file, max_steps=metrics["best_step"], **common)
    )
    kept = load_file(str(tmp_path / "best" / "out" / "model" / "model.safetensors"))
    reference = load_file(str(Path(stopped["model_dir"]) / "model.safetensors"))
    assert kept.keys() == reference.keys()
    for name in kept:
        assert torch.equal(kept[name], reference[name]), name
    with pytest.raises(ValueError, match="load_best_model_at_end needs validation"):
        tiny_config(tmp_path, desc, pair_file, load_best_model_at_end=True, val_fraction=0.0).validate()


def test_resume_continues_exactly(synthetic, tmp_path):
    desc, pair_file, _, _ = synthetic
    common = dict(epochs=3, batch_size=8, save_every=2, val_every=3, max_steps=7, dropout=0.5)
    full = train(tiny_config(tmp_path / "full", desc, pair_file, **common))
    # an interrupted run: stops after step 4 (checkpoints at 2 and 4), then resumes from the latest
    part_config = tiny_config(tmp_path / "part", desc, pair_file, **(common | {"max_steps": 4}))
    train(part_config)
    checkpoint = find_checkpoint(part_config.output_dir, "latest")
    assert checkpoint.name == "step_00000004" and (checkpoint / "train_state.json").is_file()
    assert not list((checkpoint.parent).glob(".tmp*"))
    resumed = train(tiny_config(tmp_path / "part", desc, pair_file, **(common | {"resume": "latest"})))
    assert full["global_step"] == resumed["global_step"] == 7
    assert len(full["losses"]) == 7
    assert resumed["losses"] == full["losses"]  # bit-identical, including steps 5-7 after the resume
    full_steps = {
        v["step"] for v in full["validation"]
    }  # the interrupted run also validated at its last step
    assert [v for v in resumed["validation"] if v["step"] in full_steps] == full["validation"]
    assert resumed["bank_fingerprint"] == full["bank_fingerprint"]
    # keep_last: only the newest 3 checkpoints remain
    names = sorted(p.name for p in (Path(part_config.output_dir) / "checkpoints").iterdir())
    assert names == ["step_00000002", "step_00000004", "step_00000006"]


@pytest.mark.slow
def test_resume_after_the_process_is_killed(synthetic, tmp_path):
    """SIGKILL a CLI run once a checkpoint exists (it may die mid-save), resume: the same run as an uninterrupted one."""
    import dataclasses
    import signal
    import time

    import yaml

    desc, pair_file, _, _ = synthetic
    common = dict(epochs=6, batch_size=8, save_every=1, keep_last=2, val_every=5, max_steps=40, dropout=0.5)
    full = train(tiny_config(tmp_path / "full", desc, pair_file, **common))
    config = tiny_config(tmp_path / "killed", desc, pair_file, **common)
    config_file = tmp_path / "killed.yaml"
    config_file.write_text(yaml.safe_dump(dataclasses.asdict(config)))
    env = dict(
        os.environ, OMP_NUM_THREADS=str(torch.get_num_threads())
    )  # same float reductions as this process
    process = subprocess.Popen(
        [sys.executable, "-m", "vidtempo.training.train_tca", "--config", str(config_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = Path(config.output_dir) / "checkpoints"
    deadline = time.monotonic() + 120
    while (
        not (checkpoints / "step_00000003").is_dir()
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = find_checkpoint(config.output_dir, "latest")
    assert 3 <= int(killed_at.name.split("_")[1]) < 40
    assert not (Path(config.output_dir) / "metrics.json").exists()

    resumed = train(dataclasses.replace(config, resume="latest"))
    assert resumed["global_step"] == full["global_step"] == 40
    assert resumed["losses"] == full["losses"]
    assert resumed["bank_fingerprint"] == full["bank_fingerprint"]
    assert [v for v in resumed["validation"] if v["step"] % 5 == 0] == [
        v for v in full["validation"] if v["step"] % 5 == 0
    ]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_00000039", "step_00000040"]


def test_validation_map_matches_hand_ranking():
    """validation_map against a hand computation with an identity model: embeddings = mean of frames."""
    from vidtempo.modeling import TCAConfig, TCAModel

    class MeanModel(TCAModel):
        def forward(self, frame_features, attention_mask):
            mask = attention_mask.unsqueeze(-1).float()
            mean = (frame_features * mask).sum(1) / mask.sum(1)
            return type(
                "O", (), {"video_embeds": torch.nn.functional.normalize(mean, dim=-1), "frame_embeds": None}
            )

    model = MeanModel(TCAConfig(input_size=2, hidden_size=2, num_attention_heads=1, intermediate_size=2))
    descriptors = {
        "a": np.array([[1.0, 0.0]]),
        "b": np.array([[0.9, 0.1], [1.0, 0.0]]),  # a ~ b
        "c": np.array([[0.0, 1.0]]),
        "d": np.array([[1.0, 0.05]]),  # c ~ d, but d looks like a
        "n": np.array([[0.95, 0.0]]),
    }
    value = validation_map(model, descriptors, [("a", "b"), ("c", "d")], ["n"])
    # database order a, b, c, d, n. a: b is rank 3 (d, n closer? cos(a,d)=.9988, cos(a,n)=1, cos(a,b)=.9986)
    # -> AP 1/3. b: a at rank 2 (after n? cos(b,n)=.9986...). Compute with float64 directly.
    embeds = {k: v.mean(0) / np.linalg.norm(v.mean(0)) for k, v in descriptors.items()}
    aps = []
    related = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}
    for q in "abcd":
        others = [k for k in "abcdn" if k != q]
        ranked = sorted(others, key=lambda k: -float(embeds[q] @ embeds[k]))
        hits = [i + 1 for i, k in enumerate(ranked) if k in related[q]]
        aps.append(np.mean([(j + 1) / r for j, r in enumerate(hits)]))
    assert value == pytest.approx(float(np.mean(aps)))
    assert value < 0.9  # the case is not trivially perfect


@pytest.mark.slow
def test_two_processes_share_the_bank(synthetic, tmp_path, free_port):
    desc, pair_file, _, _ = synthetic
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port),
        "-m",
        "vidtempo.training.train_tca",
        "--cpu",
        "--descriptors",
        str(desc),
        "--pairs",
        str(pair_file),
        "--output",
        str(out),
        "--hidden-size",
        "16",
        "--num-attention-heads",
        "4",
        "--intermediate-size",
        "64",
        "--dropout",
        "0.1",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--negatives-per-anchor",
        "4",
        "--bank-size",
        "48",
        "--num-frames",
        "16",
        "--learning-rate",
        "3e-3",
        "--loss",
        "infonce",
        "--temperature",
        "0.1",
        "--save-every",
        "3",
        "--max-steps",
        "6",
        "--report-to",
        "none",
        "--no-progress",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len([line for line in result.stdout.splitlines() if line.startswith("{")]) == 1  # rank 0 prints
    metrics = json.loads((out / "metrics.json").read_text())
    # every process ends with the same bank, and it is the one the step-6 checkpoint holds (the test hashes it)
    assert len(metrics["bank_fingerprints"]) == 2 and len(set(metrics["bank_fingerprints"])) == 1
    from vidtempo.training.tca_memory_bank import MemoryBank

    saved = MemoryBank(48, 16)
    saved.load_state_dict(
        torch.load(out / "checkpoints" / "step_00000006" / "custom_checkpoint_1.pkl", weights_only=True)
    )
    assert saved.fingerprint() == metrics["bank_fingerprints"][0] and saved.num_filled == 48
    assert not list(out.glob("bank_rank*"))
    assert metrics["num_processes"] == 2 and metrics["global_step"] == 6
    # 2 processes x 8 anchors x 4 negatives = 64 keys a step > 48: the bank is full after one step
    assert metrics["bank_filled"] == 48
    losses = metrics["losses"]
    assert all(np.isfinite(losses)) and np.mean(losses[3:]) < np.mean(losses[:3])  # training progresses
    assert (out / "checkpoints" / "step_00000006" / "custom_checkpoint_1.pkl").is_file()  # the bank


def test_in_batch_negatives_are_the_off_diagonal():
    from vidtempo.training.train_tca import _other_positives

    a, p = torch.randn(4, 3), torch.randn(4, 3)
    got = _other_positives(a, p)
    expected = torch.tensor([[float(a[i] @ p[j]) for j in range(4) if j != i] for i in range(4)])
    torch.testing.assert_close(got, expected)
