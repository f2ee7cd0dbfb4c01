"""TCAModel: masking, attention back-ends, an independent nn.TransformerEncoderLayer reference, config
validation, serialisation (safetensors, bf16, trust_remote_code without vidtempo) and gradient checkpointing."""

import ast
import json
import subprocess
import sys
import textwrap

import pytest
import torch
from huggingface_hub.errors import StrictDataclassError
from isolation import BLOCK_VIDTEMPO
from torch import nn

from vidtempo.modeling import TCAConfig, TCAModel
from vidtempo.modeling.modeling_tca import masked_mean

# a config's `validate_*` failure (@strict wraps it) or a `__post_init__` ValueError
CONFIG_ERRORS = (ValueError, StrictDataclassError)


def tiny_config(**overrides) -> TCAConfig:
    values = dict(
        input_size=12,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=24,
        hidden_dropout_prob=0.0,
        attention_dropout=0.0,
    )
    values.update(overrides)
    return TCAConfig(**values)


def tiny_model(**overrides) -> TCAModel:
    torch.manual_seed(0)
    return TCAModel(tiny_config(**overrides)).eval()


def ragged_inputs(lengths=(5, 2, 3), max_frames=5, input_size=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), max_frames, input_size, generator=generator)
    mask = (torch.arange(max_frames)[None] < torch.tensor(lengths)[:, None]).long()
    return features, mask


# ---------------------------------------------------------------------------------------------- masking


def test_masked_mean_against_hand_computation():
    hidden = torch.tensor(
        [
            [[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],  # third frame is padding
            [[-1.0, 0.0], [1.0, 6.0], [3.0, 0.0]],
        ]
    )
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    expected = torch.tensor([[2.0, 3.0], [1.0, 2.0]])  # (1+3)/2, (2+4)/2 ; (-1+1+3)/3, 6/3
    torch.testing.assert_close(masked_mean(hidden, mask), expected)
    # A video without valid frames gives zeros (no division by zero).
    torch.testing.assert_close(masked_mean(hidden[:1], torch.zeros(1, 3)), torch.zeros(1, 2))


@pytest.mark.parametrize("input_size", [12, 16])  # with and without the input projection
def test_padding_invariance(input_size):
    model = tiny_model(input_size=input_size)
    features, mask = ragged_inputs(input_size=input_size)
    with torch.no_grad():
        batched = model(features, attention_mask=mask)
        for index, length in enumerate(mask.sum(1).tolist()):
            alone = model(features[index : index + 1, :length])  # no padding at all
            torch.testing.assert_close(batched.last_hidden_state[index, :length], alone.last_hidden_state[0])
            torch.testing.assert_close(batched.frame_embeds[index, :length], alone.frame_embeds[0])
            torch.testing.assert_close(batched.video_embeds[index], alone.video_embeds[0])
        # Changing what sits in the padding changes nothing.
        junk = torch.where(mask.bool()[..., None], features, torch.full_like(features, 1e3))
        again = model(junk, attention_mask=mask)
    valid = mask.bool()
    torch.testing.assert_close(
        again.last_hidden_state[valid], batched.last_hidden_state[valid], rtol=0, atol=0
    )
    torch.testing.assert_close(again.video_embeds, batched.video_embeds, rtol=0, atol=0)
    assert torch.count_nonzero(batched.frame_embeds[~valid]) == 0
    assert torch.count_nonzero(again.frame_embeds[~valid]) == 0
    torch.testing.assert_close(batched.frame_embeds[valid].norm(dim=-1), torch.ones(int(valid.sum())))
    torch.testing.assert_close(batched.video_embeds.norm(dim=-1), torch.ones(3))


def test_video_embeds_are_normalised_masked_mean_of_encoder_output():
    model = tiny_model()
    features, mask = ragged_inputs()
    with torch.no_grad():
        out = model(features, attention_mask=mask)
    for index, length in enumerate(mask.sum(1).tolist()):
        mean = out.last_hidden_state[index, :length].double().mean(0)
        torch.testing.assert_close(out.video_embeds[index].double(), mean / mean.norm(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- attention


def test_sdpa_and_eager_agree_and_eager_returns_attention_maps():
    sdpa = tiny_model(attn_implementation="sdpa")
    eager = tiny_model(attn_implementation="eager")
    eager.load_state_dict(sdpa.state_dict())
    assert sdpa.config._attn_implementation == "sdpa" and eager.config._attn_implementation == "eager"
    features, mask = ragged_inputs()
    with torch.no_grad():
        out_sdpa = sdpa(features, attention_mask=mask)
        out_eager = eager(features, attention_mask=mask, output_attentions=True, output_hidden_states=True)
    valid = mask.bool()
    torch.testing.assert_close(out_eager.frame_embeds, out_sdpa.frame_embeds, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_eager.video_embeds, out_sdpa.video_embeds, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        out_eager.last_hidden_state[valid], out_sdpa.last_hidden_state[valid], rtol=1e-5, atol=1e-5
    )
    attentions = out_eager.attentions
    assert len(attentions) == 2
    for attention in attentions:
        assert attention.shape == (3, 4, 5, 5)  # [B, heads, F, F]
        torch.testing.assert_close(attention.sum(-1), torch.ones(3, 4, 5))
        padded_keys = ~valid[:, None, None, :].expand_as(attention)
        assert torch.count_nonzero(attention[padded_keys]) == 0
    assert len(out_eager.hidden_states) == 3  # projected input + one per layer
    torch.testing.assert_close(out_eager.hidden_states[-1], out_eager.last_hidden_state)


def test_matches_torch_transformer_encoder_layers():
    """Independent reference: post-LN `nn.TransformerEncoderLayer` stack with our weights copied in."""
    model = tiny_model(input_size=16, hidden_size=16, intermediate_size=24)
    config = model.config
    reference_layers = []
    for ours in model.encoder.layers:
        layer = nn.TransformerEncoderLayer(
            d_model=config.hidden_size,
            nhead=config.num_attention_heads,
            dim_feedforward=config.intermediate_size,
            dropout=0.0,
            activation="relu",
            layer_norm_eps=config.layer_norm_eps,
            batch_first=True,
            norm_first=False,
        ).eval()
        attn = ours.self_attn
        with torch.no_grad():
            layer.self_attn.in_proj_weight.copy_(
                torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
            )
            layer.self_attn.in_proj_bias.copy_(
                torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias])
            )
            layer.self_attn.out_proj.weight.copy_(attn.out_proj.weight)
            layer.self_attn.out_proj.bias.copy_(attn.out_proj.bias)
            layer.linear1.load_state_dict(ours.mlp.fc1.state_dict())
            layer.linear2.load_state_dict(ours.mlp.fc2.state_dict())
            layer.norm1.load_state_dict(ours.layer_norm1.state_dict())
            layer.norm2.load_state_dict(ours.layer_norm2.state_dict())
        reference_layers.append(layer)

    features, mask = ragged_inputs(input_size=16)
    with torch.no_grad():
        out = model(features, attention_mask=mask)
        hidden = features
        for layer in reference_layers:
            hidden = layer(hidden, src_key_padding_mask=mask == 0)
    valid = mask.bool()
    torch.testing.assert_close(out.last_hidden_state[valid], hidden[valid], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            dict(hidden_size=30, num_attention_heads=4),
            r"hidden_size \(30\) must be divisible by num_attention_heads \(4\)",
        ),
        (dict(num_hidden_layers=0), r"num_hidden_layers must be a positive integer, got 0"),
        (dict(input_size=1.5), r"input_size.* expected int, got float \(value: 1.5\)"),
        (dict(hidden_dropout_prob=1.0), r"hidden_dropout_prob must be in \[0, 1\), got 1.0"),
        (dict(attention_dropout=-0.1), r"attention_dropout must be in \[0, 1\), got -0.1"),
        (dict(layer_norm_eps=0.0), r"layer_norm_eps must be positive"),
        (dict(hidden_act="no-such-activation"), r"hidden_act must be one of"),
    ],
)
def test_config_validation(overrides, message):
    with pytest.raises(CONFIG_ERRORS, match=message):
        tiny_config(**overrides)


def test_config_defaults_follow_the_paper():
    config = TCAConfig()
    assert (config.input_size, config.hidden_size, config.num_attention_heads) == (1024, 1024, 8)
    assert (config.intermediate_size, config.num_hidden_layers, config.hidden_act) == (2048, 1, "relu")
    assert config.hidden_dropout_prob == 0.5 and config.model_type == "tca"


def test_forward_input_errors():
    model = tiny_model()
    with pytest.raises(
        ValueError, match=r"frame_features` must have shape \[batch, frames, 12\], got \(2, 5, 7\)"
    ):
        model(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=r"attention_mask` must have shape \(2, 5\), got \(2, 4\)"):
        model(torch.randn(2, 5, 12), attention_mask=torch.ones(2, 4))


# ---------------------------------------------------------------------------------------------- saving


def test_save_load_equality_safetensors_only(tmp_path):
    model = tiny_model()
    features, mask = ragged_inputs()
    model.save_pretrained(tmp_path)
    files = {path.name for path in tmp_path.iterdir()}
    assert "model.safetensors" in files and "config.json" in files
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pth"))]
    loaded = TCAModel.from_pretrained(tmp_path).eval()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(features, mask).frame_embeds, model(features, mask).frame_embeds, rtol=0, atol=0
        )


def test_bfloat16_round_trip(tmp_path):
    model = tiny_model()
    features, mask = ragged_inputs()
    model.save_pretrained(tmp_path / "fp32")
    bf16 = TCAModel.from_pretrained(tmp_path / "fp32", dtype=torch.bfloat16).eval()
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    for key, value in model.state_dict().items():
        assert torch.equal(bf16.state_dict()[key], value.to(torch.bfloat16)), key
    with torch.no_grad():
        out = bf16(features.to(torch.bfloat16), mask)
        reference = model(features, mask)
    assert out.video_embeds.dtype == torch.bfloat16
    torch.testing.assert_close(out.video_embeds.float(), reference.video_embeds, rtol=0.05, atol=0.05)
    bf16.save_pretrained(tmp_path / "bf16")
    again = TCAModel.from_pretrained(tmp_path / "bf16").eval()  # defaults to the saved dtype
    assert {p.dtype for p in again.parameters()} == {torch.bfloat16}
    with torch.no_grad():
        assert torch.equal(again(features.to(torch.bfloat16), mask).frame_embeds, out.frame_embeds)


def test_saved_code_uses_only_sibling_relative_imports(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_tca.TCAConfig",
        "AutoModel": "modeling_tca.TCAModel",
    }
    siblings = {path.stem for path in tmp_path.glob("*.py")}
    assert siblings == {
        "configuration_checks",
        "configuration_tca",
        "modeling_tca",
    }  # checks: generic, shared
    for path in tmp_path.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and node.module in siblings, (
                    f"{path.name}: from {'.' * node.level}{node.module}"
                )
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            assert not [name for name in names if name.split(".")[0] == "vidtempo"], (
                f"{path.name} imports vidtempo"
            )


CHILD_SCRIPT = (
    BLOCK_VIDTEMPO
    + """
import torch
from transformers import AutoModel


folder, inputs_file, outputs_file = sys.argv[1:4]
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
inputs = torch.load(inputs_file)
with torch.no_grad():
    out = model(inputs["features"], attention_mask=inputs["mask"])
assert not [name for name in sys.modules if name.split(".")[0] == "vidtempo"], "vidtempo was imported"
torch.save(
    {
        "frame_embeds": out.frame_embeds,
        "video_embeds": out.video_embeds,
        "class_module": type(model).__module__,
        "class_name": type(model).__name__,
    },
    outputs_file,
)
"""
)


@pytest.mark.slow  # a fresh interpreter imports torch + transformers (~15 s on 2 shared cores)
def test_trust_remote_code_round_trip_without_vidtempo(tmp_path):
    model = tiny_model()
    features, mask = ragged_inputs()
    folder = tmp_path / "tca-tiny"
    model.save_pretrained(folder)
    torch.save({"features": features, "mask": mask}, tmp_path / "inputs.pt")
    with torch.no_grad():
        expected = model(features, attention_mask=mask)
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD_SCRIPT))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [sys.executable, str(script), str(folder), str(tmp_path / "inputs.pt"), str(tmp_path / "outputs.pt")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = torch.load(tmp_path / "outputs.pt")
    assert got["class_name"] == "TCAModel"
    assert got["class_module"].startswith("transformers_modules"), got["class_module"]
    assert torch.equal(got["frame_embeds"], expected.frame_embeds)
    assert torch.equal(got["video_embeds"], expected.video_embeds)


# ---------------------------------------------------------------------------------------------- training


def test_gradient_checkpointing_gives_the_same_gradients():
    features, mask = ragged_inputs()
    target = torch.randn(3, 16, generator=torch.Generator().manual_seed(7))

    def gradients(checkpointing: bool) -> dict[str, torch.Tensor]:
        model = tiny_model()
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        out = model(features, attention_mask=mask)
        loss = ((out.video_embeds - target) ** 2).sum() + out.frame_embeds.square().mean()
        loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    plain, checkpointed = gradients(False), gradients(True)
    assert plain.keys() == checkpointed.keys()
    assert all(grad.abs().sum() > 0 for grad in plain.values())
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-6, atol=1e-7, msg=name)


def test_gradient_checkpointing_recomputes_layers_in_backward():
    features, mask = ragged_inputs()

    def mlp_calls(checkpointing: bool) -> int:
        model = tiny_model()
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        calls = []
        for layer in model.encoder.layers:
            layer.mlp.register_forward_hook(lambda *args: calls.append(1))
        model(features, attention_mask=mask).video_embeds.sum().backward()
        return len(calls)

    assert mlp_calls(False) == 2  # one forward per layer
    assert mlp_calls(True) == 4  # plus one recomputation per layer during backward
