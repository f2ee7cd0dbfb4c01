"""LocVTPModel: config validation, towers, gradients, save/load, trust_remote_code, pretrained towers, training."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from huggingface_hub.errors import StrictDataclassError
from isolation import BLOCK_VIDTEMPO
from transformers import (
    AutoConfig,
    AutoModel,
    CLIPConfig,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    DistilBertConfig,
    DistilBertModel,
    TimesformerConfig,
    TimesformerForVideoClassification,
    ViTConfig,
    ViTModel,
)

from vidtempo.modeling import LocVTPConfig, LocVTPModel
from vidtempo.modeling.modeling_locvtp import timesformer_from_image_vit

# a config's `validate_*` failure (@strict wraps it) or a `__post_init__` ValueError
CONFIG_ERRORS = (ValueError, StrictDataclassError)


SPECIAL = [0, 1, 2]
VISION = dict(
    hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24, image_size=16, patch_size=8,
    num_frames=2,
)  # fmt: skip
TEXT = dict(
    vocab_size=40, dim=16, n_layers=1, n_heads=2, hidden_dim=24, max_position_embeddings=32, dropout=0.0,
    attention_dropout=0.0,
)  # fmt: skip


def tiny_config(**kwargs):
    kwargs.setdefault("vision_config", dict(VISION))
    kwargs.setdefault("special_token_ids", SPECIAL)
    return LocVTPConfig(text_config=dict(TEXT), projection_dim=8, frames_per_clip=2, **kwargs)


def tiny_clip_config(**kwargs):
    vision = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24, image_size=16,
                  patch_size=8, projection_dim=8)  # fmt: skip
    return tiny_config(vision_backbone="clip", vision_config=vision, **kwargs)


def inputs(batch=2, clips=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 40, (batch, 6), generator=g)
    ids[:, 0], ids[:, -1] = 1, 2
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": torch.randn(batch, clips, 2, 3, 16, 16, generator=g),
    }


# ------------------------------------------------------------------------------------------------------


def test_config_defaults_follow_the_paper():
    config = LocVTPConfig()
    assert isinstance(config.vision_config, TimesformerConfig) and isinstance(
        config.text_config, DistilBertConfig
    )
    v = config.vision_config
    assert (v.hidden_size, v.patch_size, v.image_size, v.num_frames, v.attention_type) == (
        768, 16, 224, 16, "divided_space_time",
    )  # fmt: skip
    assert (config.temperature, config.num_clips, config.topk_words, config.delta_max) == (0.07, 8, 3, 4)
    assert (config.coarse_loss_weight, config.fine_loss_weight, config.temporal_loss_weight) == (
        0.5,
        1.0,
        1.0,
    )
    assert (config.correspondence, config.temporal_target) == ("clip_topk", "cross_modal")
    assert config.special_token_ids == [0, 101, 102]
    clip = LocVTPConfig(vision_backbone="clip")
    assert isinstance(clip.vision_config, CLIPVisionConfig) and clip.vision_config.patch_size == 16


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"correspondence": "topk"}, "correspondence must be one of"),
        ({"temporal_target": "both"}, "temporal_target must be one of"),
        ({"vision_backbone": "c3d"}, "vision_backbone must be one of"),
        ({"topk_words": 0}, "topk_words must be a positive integer"),
        ({"delta_max": -1}, "delta_max must be a non-negative integer"),
        ({"temperature": 0.0}, "temperature must be positive"),
        ({"fine_loss_weight": -1.0}, "fine_loss_weight must be >= 0"),
        ({"special_token_ids": [0, 99]}, r"special_token_ids must be token ids in \[0, 40\)"),
        (
            {"vision_backbone": "clip", "vision_config": TimesformerConfig(**VISION)},
            "must be a .clip_vision_model. config",
        ),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(CONFIG_ERRORS, match=message):
        tiny_config(**kwargs)


def test_feature_shapes_word_mask_and_pooling():
    model = LocVTPModel(tiny_config()).eval()
    batch = inputs()
    ids = batch["input_ids"].clone()
    ids[1, 3:] = torch.tensor([2, 0, 0])
    attn = (ids != 0).long()
    with torch.no_grad():
        clips = model.get_clip_features(batch["pixel_values"])
        words = model.get_word_features(ids, attn)
        out = model(input_ids=ids, pixel_values=batch["pixel_values"], attention_mask=attn)
    assert clips.shape == (2, 3, 8) and words.shape == (2, 6, 8)
    assert model.get_word_mask(ids, attn).tolist() == [
        [False, True, True, True, True, False],
        [False, True, True] + [False] * 3,
    ]
    torch.testing.assert_close(out.clip_embeds, torch.nn.functional.normalize(clips, dim=-1))
    # per-clip features: clip t depends only on its own frames (independent TimeSformer passes)
    one = model.get_clip_features(batch["pixel_values"][:, 1:2])
    torch.testing.assert_close(one[:, 0], clips[:, 1], atol=1e-5, rtol=1e-5)
    expected_text = torch.nn.functional.normalize(out.word_embeds[1, 1:3].mean(0), dim=0)
    torch.testing.assert_close(out.text_embeds[1], expected_text)
    torch.testing.assert_close(model.get_text_features(ids, attn).pooler_output, out.text_embeds)
    video = model.get_video_features(batch["pixel_values"])
    torch.testing.assert_close(video.pooler_output, out.video_embeds)
    torch.testing.assert_close(model.visual_projection(video.last_hidden_state), clips)
    assert out.loss is None


@pytest.mark.parametrize("make_config", [tiny_config, tiny_clip_config], ids=["timesformer", "clip"])
def test_gradients_reach_both_towers_and_checkpointing_matches(make_config):
    torch.manual_seed(0)
    model = LocVTPModel(make_config()).train()
    batch = inputs()

    def grads():
        model.zero_grad()
        out = model(**batch, return_loss=True, generator=torch.Generator().manual_seed(0))
        out.loss.backward()
        return out.loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    loss, plain = grads()
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(n for n in names - set(plain) if "position_ids" not in n)
    # DistilBERT position embeddings beyond the sequence and CLIP's unused pre-norm stats get zero/no grads only
    assert not [
        n for n in missing if not n.startswith(("text_model.embeddings.position", "vision_model.post"))
    ], missing
    for prefix in ("vision_model.", "text_model.", "visual_projection", "text_projection", "warping_head"):
        assert any(n.startswith(prefix) and g.abs().sum() > 0 for n, g in plain.items()), prefix
    model.activation_checkpointing_enable()  # the v5 name of gradient_checkpointing_enable
    assert model.is_activation_checkpointing
    loss_ckpt, ckpt = grads()
    assert loss_ckpt == pytest.approx(loss, rel=1e-6)
    for n, g in plain.items():
        torch.testing.assert_close(ckpt[n], g, atol=1e-6, rtol=1e-4, msg=n)


def test_save_load_roundtrip_and_auto_classes(tmp_path):
    model = LocVTPModel(tiny_config(correspondence="word_topk", delta_max=2)).eval()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "locvtp" and saved["auto_map"]["AutoModel"] == "modeling_locvtp.LocVTPModel"
    assert (tmp_path / "modeling_locvtp.py").exists() and (tmp_path / "configuration_locvtp.py").exists()
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is LocVTPModel
    assert loaded.config.correspondence == "word_topk" and loaded.config.delta_max == 2
    assert loaded.special_token_ids.tolist() == SPECIAL
    batch = inputs()
    with torch.no_grad():
        a = model(**batch, return_loss=True, generator=torch.Generator().manual_seed(0))
        b = loaded(**batch, return_loss=True, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.clip_embeds, b.clip_embeds)
    torch.testing.assert_close(a.loss, b.loss)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), LocVTPConfig)


def test_trust_remote_code_loads_without_vidtempo(tmp_path):
    model = LocVTPModel(tiny_config()).eval()
    model.save_pretrained(tmp_path / "model")
    batch = inputs()
    with torch.no_grad():
        expected = model(**batch).logits_per_video
    torch.save({"batch": batch, "expected": expected}, tmp_path / "io.pt")
    script = BLOCK_VIDTEMPO + textwrap.dedent(
        f"""
        import torch
        from transformers import AutoModel
        try:
            import vidtempo
            raise SystemExit("vidtempo should be blocked")
        except ImportError:
            pass
        model = AutoModel.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        io = torch.load({str(tmp_path / "io.pt")!r})
        with torch.no_grad():
            got = model(**io["batch"]).logits_per_video
        torch.testing.assert_close(got, io["expected"])
        print("REMOTE_OK", type(model).__name__)
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REMOTE_OK LocVTPModel" in result.stdout


def test_from_vision_text_pretrained_local_folders(tmp_path):
    # a TimeSformer video classifier (as facebook/timesformer-base-finetuned-k400) and a DistilBERT
    vision = TimesformerForVideoClassification(TimesformerConfig(**{**VISION, "num_frames": 4}, num_labels=3))
    vision.save_pretrained(tmp_path / "timesformer")
    text = DistilBertModel(DistilBertConfig(**TEXT))
    text.save_pretrained(tmp_path / "distilbert")
    clip = CLIPVisionModel(CLIPVisionConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                            intermediate_size=24, image_size=16, patch_size=8))  # fmt: skip
    clip.save_pretrained(tmp_path / "clip")

    model = LocVTPModel.from_vision_text_pretrained(
        str(tmp_path / "timesformer"), str(tmp_path / "distilbert"), projection_dim=8, special_token_ids=SPECIAL,
        frames_per_clip=2,
    )  # fmt: skip
    assert model.config.vision_backbone == "timesformer" and model.config.vision_config.num_frames == 4
    torch.testing.assert_close(
        model.vision_model.embeddings.cls_token, vision.timesformer.embeddings.cls_token, msg="vision weights"
    )
    torch.testing.assert_close(
        model.text_model.embeddings.word_embeddings.weight, text.embeddings.word_embeddings.weight
    )
    # 2-frame clips run through a 4-frame checkpoint (time embeddings interpolated)
    out = model(**inputs(), return_loss=True)
    assert torch.isfinite(out.loss)
    model.save_pretrained(tmp_path / "locvtp")
    reloaded = LocVTPModel.from_pretrained(tmp_path / "locvtp")
    torch.testing.assert_close(
        reloaded.vision_model.embeddings.time_embeddings, vision.timesformer.embeddings.time_embeddings
    )

    clip_model = LocVTPModel.from_vision_text_pretrained(
        str(tmp_path / "clip"), str(tmp_path / "distilbert"), projection_dim=8, special_token_ids=SPECIAL
    )
    assert clip_model.config.vision_backbone == "clip"
    torch.testing.assert_close(
        clip_model.vision_model.embeddings.class_embedding, clip.embeddings.class_embedding
    )
    # a full CLIP checkpoint (as openai/clip-vit-base-patch16): its vision tower is taken
    full = CLIPModel(
        CLIPConfig(vision_config=clip.config.to_dict(), text_config=dict(hidden_size=16, num_hidden_layers=1,
                   num_attention_heads=2, intermediate_size=24, vocab_size=50), projection_dim=8)
    )  # fmt: skip
    full.save_pretrained(tmp_path / "clip_full")
    from_full = LocVTPModel.from_vision_text_pretrained(
        str(tmp_path / "clip_full"), str(tmp_path / "distilbert"), projection_dim=8, special_token_ids=SPECIAL
    )
    torch.testing.assert_close(
        from_full.vision_model.embeddings.patch_embedding.weight,
        full.vision_model.embeddings.patch_embedding.weight,
    )
    # its visual projection comes along: a clip feature is the mean of CLIP's image embeddings of its frames
    assert from_full.config.projection_dim == 8
    frames = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        clip_image_embeds = full.visual_projection(
            full.vision_model(pixel_values=frames).pooler_output
        )  # [3, 8]
        clip_feature = from_full.eval().get_clip_features(frames[None, None])  # [1, 1, 8]
    torch.testing.assert_close(clip_feature[0, 0], clip_image_embeds.mean(0))
    other_width = LocVTPModel.from_vision_text_pretrained(
        str(tmp_path / "clip_full"), str(tmp_path / "distilbert"), projection_dim=4, special_token_ids=SPECIAL
    )  # CLIP's projection is 8-d: a 4-d projection cannot take it and starts random
    assert other_width.visual_projection.weight.shape == (4, 16)
    with pytest.raises(ValueError, match="must be a TimeSformer, CLIP or image ViT"):
        LocVTPModel.from_vision_text_pretrained(str(tmp_path / "distilbert"), str(tmp_path / "distilbert"))


def _tiny_vit(seed: int = 0, **overrides) -> ViTModel:
    """A small image ViT with every parameter perturbed (default init leaves biases at 0 and norms at 1)."""
    torch.manual_seed(seed)
    config = ViTConfig(**{**dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                                 image_size=16, patch_size=8), **overrides})  # fmt: skip
    vit = ViTModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        for parameter in vit.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    return vit


@pytest.mark.parametrize("qkv_bias", [True, False])
def test_timesformer_from_image_vit_encodes_a_still_clip_like_the_vit(qkv_bias):
    vit = _tiny_vit(qkv_bias=qkv_bias)
    video = timesformer_from_image_vit(vit, num_frames=4).eval()
    assert video.config.attention_type == "divided_space_time" and video.config.num_frames == 4
    frames = torch.randn(2, 3, 16, 16)
    still = frames[:, None].expand(2, 4, 3, 16, 16).contiguous()  # [B, T, C, H, W], one frame repeated
    with torch.no_grad():
        want = vit(pixel_values=frames).last_hidden_state  # [B, 1 + P, D]
        got = video(pixel_values=still).last_hidden_state  # [B, 1 + P·T, D], patch-major, frame-minor
    patches = got[:, 1:].reshape(2, want.shape[1] - 1, 4, -1)  # [B, P, T, D]
    torch.testing.assert_close(got[:, 0], want[:, 0])
    for t in range(4):
        torch.testing.assert_close(patches[:, :, t], want[:, 1:])
    # temporal attention starts at zero, and is trained: its output projection gets gradients on a moving clip
    assert all(float(layer.temporal_dense.weight.detach().abs().max()) == 0 for layer in video.encoder.layer)
    video.train()
    video(pixel_values=torch.randn(2, 4, 3, 16, 16)).last_hidden_state.square().mean().backward()
    assert all(float(layer.temporal_dense.weight.grad.abs().max()) > 0 for layer in video.encoder.layer)


def test_from_vision_text_pretrained_starts_from_an_image_vit_folder(tmp_path):
    # as google/vit-base-patch16-224-in21k (saved with its pooler) + distilbert-base-uncased
    vit = _tiny_vit()
    with_pooler = ViTModel(vit.config)  # the checkpoint has a pooler: it must be dropped, not fail
    assert with_pooler.load_state_dict(vit.state_dict(), strict=False).missing_keys == [
        "pooler.dense.weight", "pooler.dense.bias",
    ]  # fmt: skip
    with_pooler.save_pretrained(tmp_path / "vit")
    DistilBertModel(DistilBertConfig(**TEXT)).save_pretrained(tmp_path / "distilbert")
    model = LocVTPModel.from_vision_text_pretrained(
        str(tmp_path / "vit"), str(tmp_path / "distilbert"), projection_dim=8, special_token_ids=SPECIAL,
        frames_per_clip=2,
    )  # fmt: skip
    assert model.config.vision_backbone == "timesformer" and model.config.vision_config.num_frames == 2
    torch.testing.assert_close(
        model.vision_model.embeddings.position_embeddings, vit.embeddings.position_embeddings
    )
    out = model(**inputs(), return_loss=True)
    assert torch.isfinite(out.loss)
    model.save_pretrained(tmp_path / "locvtp")
    reloaded = LocVTPModel.from_pretrained(tmp_path / "locvtp").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs()).clip_embeds, model.eval()(**inputs()).clip_embeds)
    eight = LocVTPModel.from_vision_text_pretrained(
        str(tmp_path / "vit"), str(tmp_path / "distilbert"), projection_dim=8, special_token_ids=SPECIAL,
        vision_num_frames=8,
    )  # fmt: skip
    assert eight.config.vision_config.num_frames == 8


@pytest.mark.parametrize(
    "overrides",
    [{}, {"correspondence": "word_topk"}, {"correspondence": "2d_topk"}, {"correspondence": "random"},
     {"temporal_target": "intra_modal"}],
    ids=["clip_topk", "word_topk", "2d_topk", "random", "intra_modal"],
)  # fmt: skip
def test_tiny_model_trains_and_all_three_losses_fall(overrides):
    """A few Adam steps on a fixed batch of random clips and sentences: L_c, L_f and L_t all decrease."""
    torch.manual_seed(0)
    model = LocVTPModel(tiny_config(**overrides)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = inputs(batch=4, clips=4, seed=1)
    history = []
    for step in range(12):
        out = model(**batch, return_loss=True, generator=torch.Generator().manual_seed(step % 2))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        history.append((out.loss_coarse.item(), out.loss_fine.item(), out.loss_temporal.item()))
    first = [sum(h[i] for h in history[:2]) / 2 for i in range(3)]
    last = [sum(h[i] for h in history[-2:]) / 2 for i in range(3)]
    for name, a, b in zip(("coarse", "fine", "temporal"), first, last):
        assert b < a - 0.05, f"{name} loss did not fall: {a:.3f} -> {b:.3f} ({overrides})"


def test_masked_mean_copy_agrees_with_tca():
    """LocVTP keeps its own copy of `masked_mean` (its checkpoints carry no TCA code): the two must agree,
    including rows with no valid position."""
    from vidtempo.modeling.modeling_locvtp import masked_mean as locvtp_masked_mean
    from vidtempo.modeling.modeling_tca import masked_mean as tca_masked_mean

    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(4, 7, 5, generator=generator)
    mask = torch.rand(4, 7, generator=generator) > 0.5
    mask[0] = False
    expected = torch.stack(
        [hidden[b][mask[b]].mean(0) if mask[b].any() else torch.zeros(5) for b in range(4)]
    )
    torch.testing.assert_close(locvtp_masked_mean(hidden, mask), expected)
    torch.testing.assert_close(tca_masked_mean(hidden, mask), expected)
