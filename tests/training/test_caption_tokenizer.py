"""The offline word-level caption tokenizer reads every caption word (transformers 5.24 silently dropped its
vocabulary file: every word became [UNK]), and pre-training refuses a tokenizer that cannot read the captions."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import DistilBertTokenizerFast

from vidtempo.synthetic.captions import build_caption_specs
from vidtempo.training.train_locvtp import (
    SPECIAL_TOKENS,
    build_caption_tokenizer,
    check_tokenizer_coverage,
    unknown_token_share,
)


@pytest.fixture(scope="module")
def captions():
    specs = build_caption_specs(num_videos=40, seed=0, fps=8, duration=3)
    captions = [event["caption"] for spec in specs for event in spec["events"]]
    return captions + ["A red square, then: a blue circle!", "Über café naïve"]


def test_every_caption_word_has_its_own_id_and_decodes_back(captions, tmp_path):
    tokenizer = build_caption_tokenizer(captions, tmp_path / "tok")
    assert unknown_token_share(tokenizer, captions) == 0.0
    words = {}
    for caption in captions:
        encoded = tokenizer(caption)
        ids = encoded["input_ids"]
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        tokens = tokenizer.convert_ids_to_tokens(ids[1:-1])
        assert tokenizer.unk_token not in tokens
        # decodes back to the normalised caption (BERT's lower-casing and accent stripping)
        assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == (
            caption.lower().replace("ü", "u").replace("é", "e").replace("ï", "i").replace(" ", "")
        )
        for token, token_id in zip(tokens, ids[1:-1]):
            words.setdefault(token, set()).add(token_id)
    # distinct words get distinct ids, and each word always the same id
    assert all(len(ids) == 1 for ids in words.values())
    assert len({next(iter(ids)) for ids in words.values()}) == len(words)
    assert {"red", "square", "blue", "circle", ",", ":", "!", "uber", "cafe"} <= set(words)
    # the saved folder reloads to the same tokenizer
    reloaded = DistilBertTokenizerFast.from_pretrained(tmp_path / "tok")
    assert reloaded(captions)["input_ids"] == tokenizer(captions)["input_ids"]


def _special_tokens_only() -> DistilBertTokenizerFast:
    """What `DistilBertTokenizerFast(vocab_file=...)` gave in transformers 5.24: the special tokens alone."""
    backend = Tokenizer(models.WordPiece({t: i for i, t in enumerate(SPECIAL_TOKENS)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return DistilBertTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def test_training_refuses_a_tokenizer_that_cannot_read_the_captions(captions, tmp_path):
    broken = _special_tokens_only()
    assert unknown_token_share(broken, captions) == 1.0
    with pytest.raises(ValueError, match=r"tokenizer DistilBertTokenizer\w* .*100\.0% of the caption tokens"):
        check_tokenizer_coverage(broken, captions, max_unknown_share=0.05)
    # a tokenizer missing one word in ten is refused at 5%, accepted at 20%
    good = build_caption_tokenizer(captions, tmp_path / "tok")
    partial = ["a red square slides left", "a red square zzzqx left"]
    share = unknown_token_share(good, partial)
    assert share == pytest.approx(1 / 10)
    with pytest.raises(ValueError, match="10.0%"):
        check_tokenizer_coverage(good, partial, max_unknown_share=0.05)
    assert check_tokenizer_coverage(good, partial, max_unknown_share=0.2) == pytest.approx(0.1)
