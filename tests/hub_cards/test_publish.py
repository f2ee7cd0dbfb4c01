"""vidtempo-publish: the card's model-index equals the evaluation JSON, the folder reloads with plain
transformers (remote code, in a process that never imports vidtempo) with identical embeddings, and an
offline push fails with a clear message."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from vidtempo.cli import publish as publish_cli
from vidtempo.hub_cards import publish as P
from vidtempo.modeling import TCAConfig, TCAModel

RESULTS = [
    {
        "benchmark": "fivr:synthetic",
        "similarity": "chamfer",
        "metrics": {"DSVR": 0.81234, "CSVR": 0.7, "ISVR": None},
    },
    {
        "benchmark": "fivr:synthetic",
        "similarity": "cosine",
        "metrics": {"DSVR": 0.61, "CSVR": 0.55, "ISVR": 0.4},
    },
]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("publish")
    torch.manual_seed(0)
    model = TCAModel(
        TCAConfig(input_size=16, hidden_size=16, num_attention_heads=2, intermediate_size=32)
    ).eval()
    results_file = root / "results.json"
    results_file.write_text(json.dumps(RESULTS))
    processor_dir = root / "processor"
    processor_dir.mkdir()
    (processor_dir / "preprocessor_config.json").write_text(
        json.dumps({"image_processor_type": "X", "size": 8})
    )
    folder = P.publish_model(
        model,
        root / "hub",
        results=results_file,
        processor=processor_dir,
        training={"epochs": 2, "batch size": 4},
        datasets=["vcdb"],
    )
    return root, model, folder


def front_matter(text):
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_folder_has_weights_config_code_processor_and_card(published):
    _, _, folder = published
    names = set(os.listdir(folder))
    assert {
        "model.safetensors",
        "config.json",
        "configuration_tca.py",
        "modeling_tca.py",
        "README.md",
        "preprocessor_config.json",
        "eval_results.json",
    } <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_tca.TCAModel"
    meta = front_matter((folder / "README.md").read_text())
    assert meta["library_name"] == "transformers" and meta["license"] == "apache-2.0"
    assert meta["datasets"] == ["vcdb"] and "tca" in meta["tags"]
    card = (folder / "README.md").read_text()
    for section in ("## Usage", "## Training", "## Evaluation", "trust_remote_code=True", "**epochs:** 2"):
        assert section in card


def test_card_metrics_equal_the_evaluation_json(published):
    _, _, folder = published
    meta = front_matter((folder / "README.md").read_text())
    found = sorted(
        (result["dataset"]["name"], metric["name"], metric["type"], metric["value"])
        for entry in meta["model-index"]
        for result in entry["results"]
        for metric in result["metrics"]
    )
    expected = sorted(
        (r["benchmark"], f"{name} ({r['similarity']})", "map", round(value, 4))
        for r in RESULTS
        for name, value in r["metrics"].items()
        if value is not None
    )
    assert found == expected and len(found) == 5
    table = (folder / "README.md").read_text().split("## Evaluation")[1]
    assert "| fivr:synthetic | chamfer | DSVR | 0.8123 |" in table


@pytest.mark.slow  # a fresh Python process imports torch + transformers (~10-25 s here)
def test_published_folder_loads_without_vidtempo_with_identical_embeddings(published, tmp_path):
    _, model, folder = published
    torch.manual_seed(1)
    frames = torch.randn(3, 7, 16)
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4])
    with torch.no_grad():
        expected = model(frame_features=frames, attention_mask=mask)
    torch.save({"frames": frames, "mask": mask}, tmp_path / "inputs.pt")
    script = f"""
import sys, torch
sys.modules["vidtempo"] = None  # any import of vidtempo now fails
from transformers import AutoModel
model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
inputs = torch.load({str(tmp_path / "inputs.pt")!r})
with torch.no_grad():
    out = model(frame_features=inputs["frames"], attention_mask=inputs["mask"])
torch.save({{"video": out.video_embeds, "frame": out.frame_embeds}}, {str(tmp_path / "out.pt")!r})
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-2000:]
    got = torch.load(tmp_path / "out.pt")
    torch.testing.assert_close(got["video"], expected.video_embeds, rtol=0, atol=1e-6)
    torch.testing.assert_close(got["frame"], expected.frame_embeds, rtol=0, atol=1e-6)


def test_publishing_from_a_saved_folder_gives_the_same_weights(published, tmp_path):
    _, model, folder = published
    again = P.publish_model(folder, tmp_path / "again", results=RESULTS[0])
    from safetensors.torch import load_file

    a, b = load_file(folder / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_offline_push_fails_clearly_but_leaves_the_folder(published, tmp_path, monkeypatch, capsys):
    root, _, folder = published
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(P.PublishError, match="HF_HUB_OFFLINE"):
        P.push_folder(folder, "someone/tca")
    out = tmp_path / "cli"
    code = publish_cli.main(
        [str(folder), str(out), "--results", str(root / "results.json"), "--push-to-hub", "someone/tca"]
    )
    assert code == 1
    assert "cannot push to someone/tca" in capsys.readouterr().err
    assert (out / "model.safetensors").exists()


def test_bad_results_are_reported_with_the_file_name(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"benchmark": "x", "metric": {}}))
    with pytest.raises(P.PublishError, match="bad.json.*'metrics'"):
        P.load_results(bad)
    with pytest.raises(P.PublishError, match="does not exist"):
        P.load_results(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("DSVR", "map"),
        ("R@5", "recall@5"),
        ("R@1 IoU>0.5", "recall@1_iou0.5"),
        ("mIoU", "miou"),
        ("MdR", "median_rank"),
    ],
)
def test_metric_types(name, expected):
    assert P.metric_type(name) == expected


def test_push_without_network_fails_clearly(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    (tmp_path / "README.md").write_text("x")
    with pytest.raises(P.PublishError, match="cannot push to someone/tca: .*network"):
        P.push_folder(tmp_path, "someone/tca", token="hf_fake")


def test_locvtp_evaluation_json_is_read_as_retrieval_and_grounding(tmp_path):
    payload = {
        "model": "m",
        "dataset": "synthetic-captions",
        "retrieval": {"t2v": {"R@1": 40.0, "R@5": 80.0, "MdR": 2.0}, "v2t": {"R@1": 35.5}},
        "grounding": {"R@1,IoU=0.5": 41.25, "mIoU": 38.0, "num_queries": 12, "failed": []},
    }
    path = tmp_path / "locvtp.json"
    path.write_text(json.dumps(payload))
    entries = sorted(
        (e.task_type, e.metric_type, e.metric_name, e.metric_value)
        for e in P.eval_results_from(P.load_results(path))
    )
    assert entries == sorted(
        [
            ("text-to-video-retrieval", "recall@1", "t2v R@1", 40.0),
            ("text-to-video-retrieval", "recall@5", "t2v R@5", 80.0),
            ("text-to-video-retrieval", "median_rank", "t2v MdR", 2.0),
            ("text-to-video-retrieval", "recall@1", "v2t R@1", 35.5),
            ("temporal-grounding", "recall@1_iou0.5", "R@1,IoU=0.5", 41.25),
            ("temporal-grounding", "miou", "mIoU", 38.0),
        ]
    )


def test_reload_check_matches_the_model_and_refuses_a_folder_that_needs_vidtempo(published, tmp_path):
    import shutil

    import numpy as np

    from vidtempo.hub_cards.reload_check import embed_without_vidtempo, reload_difference

    _, model, folder = published
    rng = np.random.default_rng(0)
    descriptors = {f"v{i}": rng.standard_normal((5 + i, 16)).astype(np.float32) for i in range(3)}
    with torch.no_grad():  # the reference: the in-memory model, one video at a time
        expected = np.stack(
            [model(torch.from_numpy(d)[None]).video_embeds[0].numpy() for d in descriptors.values()]
        )
    assert reload_difference(folder, descriptors, expected) <= 1e-5
    assert reload_difference(folder, descriptors, expected + 0.5) == pytest.approx(0.5, abs=1e-5)
    broken = tmp_path / "no_code"
    shutil.copytree(folder, broken)
    for code in broken.glob("*.py"):  # without its code the folder could only load through vidtempo
        code.unlink()
    with pytest.raises(RuntimeError, match="cannot import vidtempo"):
        embed_without_vidtempo(broken, list(descriptors.values()))


def test_publish_command_errors_are_one_line(tmp_path, capsys):
    assert publish_cli.main([str(tmp_path / "nothing"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no config.json" in err and len(err.strip().splitlines()) == 1
    training = tmp_path / "training.json"
    training.write_text("{not json")
    with pytest.raises(P.PublishError, match=r"training section \(.*training.json\): expected a JSON object"):
        P.read_training(training)


def test_push_hints_name_commands_the_installed_hf_cli_has(tmp_path, monkeypatch):
    """The offline push error tells the user a command to run later: that command must exist in the
    installed huggingface_hub CLI (huggingface_hub 2 replaced `huggingface-cli` with `hf`)."""
    import re
    import shlex
    from pathlib import Path

    from vidtempo.hub_cards.publish import PublishError, push_folder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PublishError) as caught:
        push_folder(tmp_path, "user/repo")
    commands = re.findall(r"`(hf [^`]+)`", str(caught.value))
    assert commands and "huggingface-cli" not in str(caught.value)
    source = (Path(__file__).resolve().parents[2] / "hub_cards" / "publish.py").read_text()
    commands += re.findall(r"`(hf [a-z ]+)`", source)  # the login hint of a failed upload
    hf = Path(sys.executable).with_name("hf")
    for command in commands:
        words = [w for w in shlex.split(command)[1:] if not w.startswith(("user/", str(tmp_path), "."))]
        result = subprocess.run([str(hf), *words, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (command, result.stderr[-500:])


def test_card_templates_name_commands_that_exist_and_serve_the_model():
    """Every `vidtempo-*` command a card names is a console script; LocVTP's evaluation is its own command."""
    import re
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[2]
    scripts = set(tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"])
    for template in P.TEMPLATES.values():
        text = (root / "hub_cards" / template).read_text()
        named = set(re.findall(r"`(vidtempo-[a-z-]+)", text))
        assert named and named <= scripts, (template, named - scripts)
    locvtp = (root / "hub_cards" / "locvtp_card.md").read_text()
    assert "vidtempo-eval-locvtp" in locvtp and "`vidtempo-eval`" not in locvtp


def test_push_to_hub_sends_create_repo_and_upload_folder(tmp_path, monkeypatch):
    """`--push-to-hub` through huggingface_hub, against a stand-in `HfApi`: the request shape is checked."""
    import huggingface_hub
    from huggingface_hub import constants

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", {"token": token}))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

        def upload_folder(self, **kwargs):
            kwargs["files"] = sorted(os.listdir(kwargs["folder_path"]))  # what would be uploaded
            calls.append(("upload_folder", kwargs))
            return type("Info", (), {"commit_url": f"https://hub.invalid/{kwargs['repo_id']}/commit/1"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    model = TCAModel(TCAConfig(input_size=8, hidden_size=8, num_attention_heads=2, intermediate_size=16))
    code = publish_cli.main([_saved(model, tmp_path), str(tmp_path / "hub"), "--push-to-hub", "me/tca",
                             "--private", "--base-model", "microsoft/resnet-50"])  # fmt: skip
    assert code == 0
    names = [name for name, _ in calls]
    assert names == ["init", "create_repo", "upload_folder"]
    assert calls[1][1] == {"repo_id": "me/tca", "repo_type": "model", "private": True, "exist_ok": True}
    upload = calls[2][1]
    assert upload["repo_id"] == "me/tca" and upload["repo_type"] == "model"
    assert upload["folder_path"] == str(tmp_path / "hub")
    assert {"model.safetensors", "config.json", "README.md", "modeling_tca.py"} <= set(upload["files"])
    meta = front_matter((tmp_path / "hub" / "README.md").read_text())
    assert (
        meta["base_model"] == "microsoft/resnet-50" and "pipeline_tag" not in meta
    )  # TCA alone: no pipeline
    assert 'AutoModel.from_pretrained("me/tca"' in (tmp_path / "hub" / "README.md").read_text()


def _saved(model, tmp_path) -> str:
    model.save_pretrained(tmp_path / "saved")
    return str(tmp_path / "saved")


@pytest.mark.slow  # a fresh interpreter imports torch + transformers (~15 s)
def test_descriptor_and_tca_cards_describe_their_model_and_their_snippets_run(tmp_path):
    """The descriptor model gets its own card (its backbone, pooling and PCA, not TCA's fields), and the
    usage snippets of the descriptor and TCA-alone cards run as written in a process without vidtempo."""
    import re
    import textwrap

    from isolation import BLOCK_VIDTEMPO
    from transformers import ResNetConfig

    from vidtempo.modeling import FrameDescriptorConfig, FrameDescriptorModel

    backbone = ResNetConfig(
        depths=[1, 1, 1, 1], hidden_sizes=[8, 8, 8, 8], embedding_size=8, layer_type="basic"
    )
    descriptor = FrameDescriptorModel(FrameDescriptorConfig(backbone_config=backbone, pca_dim=16)).eval()
    from vidtempo.processing.image_processing_tca import TCAImageProcessor

    folders = {
        "descriptor": P.publish_model(
            descriptor, tmp_path / "desc", processor=TCAImageProcessor(shortest_edge=64, crop_size=56)
        ),
        "tca": P.publish_model(
            TCAModel(TCAConfig(input_size=16, hidden_size=16, num_attention_heads=2, intermediate_size=32)),
            tmp_path / "tca",
        ),
    }
    card = (folders["descriptor"] / "README.md").read_text()
    assert (
        card.count("# vidtempo-frame_descriptor") == 1
        and "?" not in card.split("## Usage")[0].split("---")[2]
    )
    assert (
        "ResNet (basic blocks, depths [1, 1, 1, 1], widths [8, 8, 8, 8])" in card
        and "PCA-whitened to 16-d" in card
    )
    assert "[frames, 3, 56, 56]" in card and "TCA (Temporal Context" not in card
    script = BLOCK_VIDTEMPO
    for folder in folders.values():
        text = (folder / "README.md").read_text()
        repo = re.search(r'from_pretrained\("([^"]+)"', text).group(1)
        code = re.search(r"## Usage\n\n```python\n(.*?)```", text, flags=re.S).group(1)
        script += code.replace(f'"{repo}"', repr(str(folder))) + "\n"
    script += textwrap.dedent(
        """
        assert descriptors.shape == (4, 16) and video_similarity.shape == (2, 2)
        assert not [m for m in sys.modules if m.split(".")[0] == "vidtempo"]
        """
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "PYTHONPATH": "",
    }
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
