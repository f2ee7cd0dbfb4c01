"""The ablation's aggregators (TCAConfig.aggregator = netvlad | lstm | gru): references, padding, saving."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassError
from isolation import BLOCK_VIDTEMPO
from transformers import AutoModel

from vidtempo.modeling import TCAConfig, TCAModel

# a config's `validate_*` failure (@strict wraps it) or a `__post_init__` ValueError
CONFIG_ERRORS = (ValueError, StrictDataclassError)


AGGREGATORS = ["netvlad", "lstm", "gru"]


def tiny(aggregator: str, input_size: int = 12, **overrides) -> TCAModel:
    torch.manual_seed(0)
    values = dict(input_size=input_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=24, hidden_dropout_prob=0.0, attention_dropout=0.0, aggregator=aggregator,
                  netvlad_clusters=3)  # fmt: skip
    values.update(overrides)
    return TCAModel(TCAConfig(**values)).eval()


def ragged(lengths=(5, 2, 3), max_frames=5, input_size=12):
    features = torch.randn(len(lengths), max_frames, input_size, generator=torch.Generator().manual_seed(0))
    mask = (torch.arange(max_frames)[None] < torch.tensor(lengths)[:, None]).long()
    return features, mask


@pytest.mark.parametrize("input_size", [12, 16])
@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_padding_invariance(aggregator, input_size):
    model = tiny(aggregator, input_size)
    features, mask = ragged(input_size=input_size)
    with torch.no_grad():
        batched = model(features, attention_mask=mask)
        junk = model(torch.where(mask.bool()[..., None], features, torch.full_like(features, 1e3)), mask)
        for index, length in enumerate(mask.sum(1).tolist()):
            alone = model(features[index : index + 1, :length])
            torch.testing.assert_close(batched.video_embeds[index], alone.video_embeds[0])
            if aggregator != "netvlad":
                torch.testing.assert_close(batched.frame_embeds[index, :length], alone.frame_embeds[0])
    torch.testing.assert_close(junk.video_embeds, batched.video_embeds, rtol=0, atol=1e-6)
    torch.testing.assert_close(batched.video_embeds.norm(dim=-1), torch.ones(3))
    if aggregator == "netvlad":
        assert batched.frame_embeds is None and batched.last_hidden_state is None
        with pytest.raises(ValueError, match="no frame-level embeddings"):
            model.get_frame_features(features, mask)
    else:
        assert torch.count_nonzero(batched.frame_embeds[~mask.bool()]) == 0


def test_netvlad_against_a_loop():
    model = tiny("netvlad", input_size=16)
    vlad = model.netvlad
    features, mask = ragged(input_size=16)
    with torch.no_grad():
        out = model(features, mask).video_embeds
    for b, length in enumerate(mask.sum(1).tolist()):
        x = features[b, :length].double()
        w, c = vlad.assignment.weight.double(), vlad.centroids.double()
        rows = []
        for k in range(c.shape[0]):
            residual = torch.zeros(16, dtype=torch.float64)
            for i in range(length):
                logits = w @ x[i] + vlad.assignment.bias.double()
                residual += torch.softmax(logits, 0)[k] * (x[i] - c[k])
            rows.append(residual / residual.norm())
        flat = torch.cat(rows)
        flat = flat / flat.norm()
        assert vlad.projection.bias is None
        expected = vlad.projection.weight.double() @ flat
        torch.testing.assert_close(out[b].double(), expected / expected.norm(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("aggregator", ["lstm", "gru"])
def test_recurrent_equals_torch_bidirectional_rnn(aggregator):
    model = tiny(aggregator, input_size=16, num_hidden_layers=1)
    features, mask = ragged(input_size=16)
    rnn = model.encoder.layers[0].rnn
    with torch.no_grad():
        out = model(features, mask)
        for b, length in enumerate(mask.sum(1).tolist()):
            x = features[b : b + 1, :length]
            # the backward direction is the forward pass of the reversed sequence with the *_reverse weights
            cell = (torch.nn.LSTM if aggregator == "lstm" else torch.nn.GRU)(16, 8, batch_first=True)
            cell.load_state_dict(
                {k.replace("_reverse", ""): v for k, v in rnn.state_dict().items() if "reverse" in k}
            )
            backward = cell(x.flip(1))[0].flip(1)
            cell.load_state_dict({k: v for k, v in rnn.state_dict().items() if "reverse" not in k})
            forward = cell(x)[0]
            hidden = torch.cat([forward, backward], dim=-1)[0]
            torch.testing.assert_close(out.frame_embeds[b, :length], F.normalize(hidden, dim=-1))
            torch.testing.assert_close(out.video_embeds[b], F.normalize(hidden.mean(0), dim=-1))


def test_config_validation():
    with pytest.raises(CONFIG_ERRORS, match="aggregator must be one of"):
        TCAConfig(aggregator="lstmm")
    with pytest.raises(CONFIG_ERRORS, match="even"):
        TCAConfig(hidden_size=15, num_attention_heads=5, aggregator="gru")
    with pytest.raises(CONFIG_ERRORS, match="netvlad_clusters"):
        TCAConfig(aggregator="netvlad", netvlad_clusters=0)
    assert TCAConfig().aggregator == "transformer"


@pytest.mark.slow  # a fresh interpreter imports torch + transformers
def test_save_load_and_trust_remote_code_without_vidtempo(tmp_path):
    features, mask = ragged()
    expected = {}
    for aggregator in AGGREGATORS:
        model = tiny(aggregator)
        model.save_pretrained(tmp_path / aggregator)
        assert (tmp_path / aggregator / "model.safetensors").is_file()
        loaded = AutoModel.from_pretrained(tmp_path / aggregator, trust_remote_code=True).eval()
        assert loaded.config.aggregator == aggregator
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), (aggregator, key)
        with torch.no_grad():  # (LSTM kernels may round differently on re-laid-out weights: not bit-exact)
            expected[aggregator] = model(features, mask).video_embeds
            torch.testing.assert_close(
                loaded(features, mask).video_embeds, expected[aggregator], rtol=0, atol=1e-6
            )
    torch.save({"features": features, "mask": mask}, tmp_path / "inputs.pt")
    script = (
        BLOCK_VIDTEMPO
        + f"""
import torch
from transformers import AutoModel

inputs = torch.load({str(tmp_path / "inputs.pt")!r})
out = {{}}
for name in {AGGREGATORS!r}:
    model = AutoModel.from_pretrained({str(tmp_path)!r} + "/" + name, trust_remote_code=True).eval()
    assert model.config.aggregator == name and type(model).__module__.startswith("transformers_modules")
    with torch.no_grad():
        out[name] = model(inputs["features"], attention_mask=inputs["mask"]).video_embeds
torch.save(out, {str(tmp_path / "out.pt")!r})
"""
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
                                 "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    got = torch.load(tmp_path / "out.pt")
    for aggregator in AGGREGATORS:
        torch.testing.assert_close(got[aggregator], expected[aggregator], rtol=0, atol=1e-6)
