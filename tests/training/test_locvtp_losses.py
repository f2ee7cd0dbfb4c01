"""LocVTP losses (METHODS.md §2.2) against naive float64 references written with explicit Python loops."""

import math

import pytest
import torch
import torch.nn.functional as F

from vidtempo.modeling import LocVTPConfig, LocVTPModel
from vidtempo.modeling.modeling_locvtp import (
    coarse_contrastive_loss,
    discover_correspondence,
    fine_grained_contrastive_loss,
    positive_word_embeds,
    sample_temporal_offsets,
)

TAU = 0.07
SPECIAL = (0, 1, 2)  # [PAD], [CLS], [SEP] of the tiny vocabularies below


# ------------------------------------------------------------------------------------------------------
# Naive references (float64, loops, plain lists)
# ------------------------------------------------------------------------------------------------------


def dot(a, b):
    return sum(float(x) * float(y) for x, y in zip(a, b))


def normalize(vec):
    norm = math.sqrt(sum(float(x) ** 2 for x in vec))
    return [float(x) / max(norm, 1e-12) for x in vec]


def mean_vec(vectors):
    return [sum(float(v[d]) for v in vectors) / len(vectors) for d in range(len(vectors[0]))]


def ref_word_mask(input_ids, attention_mask):
    return [
        [bool(attention_mask[b][s]) and int(input_ids[b][s]) not in SPECIAL for s in range(len(input_ids[b]))]
        for b in range(len(input_ids))
    ]


def ref_coarse(v, q, cmask, wmask, tau=TAU):
    batch = len(v)
    vbar = [normalize(mean_vec([v[b][t] for t in range(len(v[b])) if cmask[b][t]])) for b in range(batch)]
    qbar = [normalize(mean_vec([q[b][s] for s in range(len(q[b])) if wmask[b][s]])) for b in range(batch)]
    logits = [[dot(vbar[i], qbar[j]) / tau for j in range(batch)] for i in range(batch)]
    v2t = sum(-logits[i][i] + math.log(sum(math.exp(x) for x in logits[i])) for i in range(batch)) / batch
    t2v = (
        sum(-logits[j][j] + math.log(sum(math.exp(logits[i][j]) for i in range(batch))) for j in range(batch))
        / batch
    )
    return (v2t + t2v) / 2, logits


def ref_positive_sets(v, q, cmask, wmask, k, mode):
    """{(b, t): [word indices]} of the correspondence discovery, by explicit sorting."""
    sets = {}
    for b in range(len(v)):
        clips = [t for t in range(len(v[b])) if cmask[b][t]]
        words = [s for s in range(len(q[b])) if wmask[b][s]]
        sim = {(t, s): dot(v[b][t], q[b][s]) for t in clips for s in words}
        if mode == "clip_topk":
            for t in clips:
                ranked = sorted(words, key=lambda s: -sim[(t, s)])
                sets[(b, t)] = ranked[: min(k, len(words))]
        elif mode == "word_topk":
            for t in clips:
                sets[(b, t)] = []
            for s in words:
                ranked = sorted(clips, key=lambda t: -sim[(t, s)])
                for t in ranked[: min(k, len(clips))]:
                    sets[(b, t)].append(s)
        elif mode == "2d_topk":
            for t in clips:
                sets[(b, t)] = []
            ranked = sorted(sim, key=lambda pair: -sim[pair])
            for t, s in ranked[: min(k * len(clips), len(ranked))]:
                sets[(b, t)].append(s)
    return sets


def ref_infonce_per_video(anchors, positives, amask, negatives, tau=TAU, positive_in_denominator=False):
    """(1/T_b) Σ_t [-a·p/τ + log Σ_neg e^{a·n/τ}] (+ e^{a·p/τ} inside the log when
    `positive_in_denominator`), then the mean over videos with at least one anchor."""
    per_video = []
    for b in range(len(anchors)):
        terms = []
        for t in range(len(anchors[b])):
            if not amask[b][t]:
                continue
            denom = sum(math.exp(dot(anchors[b][t], n) / tau) for n in negatives)
            if positive_in_denominator:
                denom += math.exp(dot(anchors[b][t], positives[b][t]) / tau)
            terms.append(-dot(anchors[b][t], positives[b][t]) / tau + math.log(denom))
        if terms:
            per_video.append(sum(terms) / len(terms))
    return sum(per_video) / len(per_video)


def ref_warp(v, delta, weight):
    """z^t = normalize(ReLU(W [v^{t+δ}; sgn δ; |δ|])) with W [D, D+2]."""
    out = []
    for b in range(len(v)):
        row = []
        for t in range(len(v[b])):
            d = int(delta[b][t])
            x = [float(e) for e in v[b][t + d]] + [float((d > 0) - (d < 0)), float(abs(d))]
            z = [max(0.0, dot(weight[o], x)) for o in range(len(weight))]
            row.append(normalize(z))
        out.append(row)
    return out


def to_list(t):
    return t.detach().double().tolist()


# ------------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------------


def random_batch(batch=3, clips=5, words=6, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = F.normalize(torch.randn(batch, clips, dim, generator=g, dtype=torch.float64), dim=-1)
    q = F.normalize(torch.randn(batch, words, dim, generator=g, dtype=torch.float64), dim=-1)
    cmask = torch.ones(batch, clips, dtype=torch.bool)
    cmask[1, 3:] = False  # a video with 3 clips
    wmask = torch.ones(batch, words, dtype=torch.bool)
    wmask[:, 0] = False  # [CLS]
    wmask[0, 4:] = False  # [SEP] + padding: 3 real words
    wmask[2, 2:] = False  # a single real word: K is capped at 1
    return v, q, cmask, wmask


def tiny_config(**kwargs):
    return LocVTPConfig(
        vision_config=dict(
            hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
            image_size=16, patch_size=8, num_frames=2,
        ),
        text_config=dict(vocab_size=40, dim=16, n_layers=1, n_heads=2, hidden_dim=24, max_position_embeddings=32),
        projection_dim=8, frames_per_clip=2, special_token_ids=list(SPECIAL), **kwargs,
    )  # fmt: skip


def sentence_batch(batch=3, length=7, seed=0):
    """Token ids with [CLS] first, [SEP] after the sentence and [PAD] after it, of varied lengths."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 40, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    for b, n_words in enumerate([5, 2, 3][:batch]):
        ids[b, 0] = 1
        ids[b, n_words + 1] = 2
        ids[b, n_words + 2 :] = 0
        mask[b, n_words + 2 :] = 0
    return ids, mask


# ------------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------------


def test_coarse_loss_matches_reference():
    v, q, cmask, wmask = random_batch()
    vbar = F.normalize(torch.stack([v[b][cmask[b]].mean(0) for b in range(3)]), dim=-1)
    qbar = F.normalize(torch.stack([q[b][wmask[b]].mean(0) for b in range(3)]), dim=-1)
    expected, _ = ref_coarse(to_list(v), to_list(q), cmask.tolist(), wmask.tolist())
    assert coarse_contrastive_loss(vbar, qbar, TAU).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("mode", ["clip_topk", "word_topk", "2d_topk"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_correspondence_matches_loops(mode, k):
    v, q, cmask, wmask = random_batch(seed=k)
    weights = discover_correspondence(v, q, cmask, wmask, topk=k, mode=mode)
    sets = ref_positive_sets(to_list(v), to_list(q), cmask.tolist(), wmask.tolist(), k, mode)
    for b in range(v.shape[0]):
        for t in range(v.shape[1]):
            chosen = sets.get((b, t), [])
            expected = torch.zeros(q.shape[1], dtype=torch.float64)
            if chosen:
                expected[chosen] = 1.0 / len(chosen)
            torch.testing.assert_close(weights[b, t], expected, msg=f"{mode} k={k} clip ({b},{t})")
    # never a special token or a padding position
    assert not bool((weights > 0)[~(cmask[:, :, None] & wmask[:, None, :])].any())


@pytest.mark.parametrize("pooling", ["mean", "normalized_mean"])
def test_clip_topk_positive_is_mean_of_top_words(pooling):
    v, q, cmask, wmask = random_batch()
    positives = positive_word_embeds(discover_correspondence(v, q, cmask, wmask, topk=3), q, pooling)
    sets = ref_positive_sets(to_list(v), to_list(q), cmask.tolist(), wmask.tolist(), 3, "clip_topk")
    ql = to_list(q)
    for (b, t), chosen in sets.items():
        assert len(chosen) == min(3, int(wmask[b].sum()))
        expected = mean_vec([ql[b][s] for s in chosen])
        expected = normalize(expected) if pooling == "normalized_mean" else expected
        torch.testing.assert_close(positives[b, t], torch.tensor(expected, dtype=torch.float64))
    with pytest.raises(ValueError, match="positive pooling"):
        positive_word_embeds(discover_correspondence(v, q, cmask, wmask, topk=3), q, "max")


def test_default_positive_is_bounded_by_the_words_agreement():
    # two orthogonal unit words: their plain mean has norm 1/sqrt(2), so a clip equal to that mean direction
    # reaches a positive cosine of only 0.707 (the re-normalised mean would give 1.0)
    words = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    weights = torch.tensor([[[0.5, 0.5]]], dtype=torch.float64)
    clip = torch.tensor([1.0, 1.0], dtype=torch.float64) / 2**0.5
    mean = positive_word_embeds(weights, words)[0, 0]
    normalized = positive_word_embeds(weights, words, "normalized_mean")[0, 0]
    assert float(clip @ mean) == pytest.approx(2**-0.5)
    assert float(clip @ normalized) == pytest.approx(1.0)
    assert LocVTPModel(tiny_config()).config.positive_pooling == "mean"
    with pytest.raises(Exception, match="positive_pooling must be one of"):  # the config's strict validator
        tiny_config(positive_pooling="sum")


def test_random_correspondence_is_seeded_and_picks_real_words():
    v, q, cmask, wmask = random_batch()
    a = discover_correspondence(v, q, cmask, wmask, 3, "random", torch.Generator().manual_seed(5))
    b = discover_correspondence(v, q, cmask, wmask, 3, "random", torch.Generator().manual_seed(5))
    c = discover_correspondence(v, q, cmask, wmask, 3, "random", torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    counts = (a > 0).sum(-1)
    for bi in range(3):
        for t in range(5):
            expected = min(3, int(wmask[bi].sum())) if cmask[bi, t] else 0
            assert int(counts[bi, t]) == expected
    assert not bool((a > 0)[~(cmask[:, :, None] & wmask[:, None, :])].any())


def test_fine_grained_loss_matches_reference_with_all_batch_words_as_negatives():
    v, q, cmask, wmask = random_batch()
    positives = positive_word_embeds(discover_correspondence(v, q, cmask, wmask, topk=3), q)
    negatives = [to_list(q)[b][s] for b in range(3) for s in range(q.shape[1]) if wmask[b, s]]
    # §2.2 as printed: the positive is not part of the denominator, so the loss is not bounded by 0
    got = fine_grained_contrastive_loss(v, positives, cmask, q, wmask, TAU, positive_in_denominator=False)
    expected = ref_infonce_per_video(to_list(v), to_list(positives), cmask.tolist(), negatives)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # default: standard InfoNCE with the positive in the denominator, never below 0
    got = fine_grained_contrastive_loss(v, positives, cmask, q, wmask, TAU)
    expected_bounded = ref_infonce_per_video(
        to_list(v), to_list(positives), cmask.tolist(), negatives, positive_in_denominator=True
    )
    assert got.item() == pytest.approx(expected_bounded, rel=1e-6)
    assert expected_bounded > 0 and expected_bounded != pytest.approx(expected)


def test_fine_grained_loss_is_bounded_by_default_for_a_perfect_positive():
    """An anchor equal to its positive, far from every word: §2.2's literal form goes below 0, ours cannot."""
    anchor = F.normalize(torch.ones(1, 1, 4, dtype=torch.float64), dim=-1)
    words = F.normalize(
        torch.tensor([[[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]]], dtype=torch.float64), dim=-1
    )
    mask = torch.ones(1, 1, dtype=torch.bool)
    literal = fine_grained_contrastive_loss(
        anchor, anchor, mask, words, None, TAU, positive_in_denominator=False
    )
    bounded = fine_grained_contrastive_loss(anchor, anchor, mask, words, None, TAU)
    # by hand: a·p = 1, a·w = 0 for both words -> literal = -1/τ + log 2, bounded = log(e^{1/τ} + 2) - 1/τ
    assert literal.item() == pytest.approx(-1 / TAU + math.log(2), rel=1e-12)
    assert bounded.item() == pytest.approx(math.log(math.exp(1 / TAU) + 2) - 1 / TAU, rel=1e-12)
    assert bounded.item() > 0 > literal.item()


def test_fine_grained_loss_accepts_external_negatives():
    """Words of other processes' sentences (all-gathered) join the denominator only."""
    v, q, cmask, wmask = random_batch()
    positives = positive_word_embeds(discover_correspondence(v, q, cmask, wmask, topk=3), q)
    extra = F.normalize(torch.randn(2, q.shape[1], q.shape[2], dtype=torch.float64), dim=-1)
    extra_mask = torch.tensor([[True] * 4 + [False] * 2, [False] + [True] * 5])
    all_words, all_mask = torch.cat([q, extra]), torch.cat([wmask, extra_mask])
    got = fine_grained_contrastive_loss(v, positives, cmask, all_words, all_mask, TAU)
    negatives = [to_list(all_words)[b][s] for b in range(5) for s in range(q.shape[1]) if all_mask[b, s]]
    expected = ref_infonce_per_video(
        to_list(v), to_list(positives), cmask.tolist(), negatives, positive_in_denominator=True
    )
    assert got.item() == pytest.approx(expected, rel=1e-6)
    flat = fine_grained_contrastive_loss(v, positives, cmask, all_words[all_mask], None, TAU)
    assert flat.item() == pytest.approx(expected, rel=1e-6)


def test_temporal_offsets_stay_inside_each_video_and_cover_the_range():
    clip_mask = torch.tensor([[1] * 8, [1] * 3 + [0] * 5, [1] + [0] * 7], dtype=torch.bool)
    seen = {}
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        delta = sample_temporal_offsets(clip_mask, 4, g)
        for b in range(3):
            n_valid = int(clip_mask[b].sum())
            for t in range(8):
                d = int(delta[b, t])
                if t >= n_valid:
                    assert d == 0
                    continue
                assert -4 <= d <= 4 and 0 <= t + d < n_valid, (b, t, d)
                seen.setdefault((b, t), set()).add(d)
    # every admissible offset is drawn (uniform over the admissible set, 300 draws); never 0 (the identity)
    # except in the one-clip video, where no other offset exists
    for (b, t), values in seen.items():
        n_valid = int(clip_mask[b].sum())
        expected = {d for d in range(-4, 5) if d != 0 and 0 <= t + d < n_valid}
        assert values == (expected or {0}), (b, t)
    assert seen[(2, 0)] == {0}
    again = sample_temporal_offsets(clip_mask, 4, torch.Generator().manual_seed(3))
    torch.testing.assert_close(again, sample_temporal_offsets(clip_mask, 4, torch.Generator().manual_seed(3)))
    assert not bool(sample_temporal_offsets(clip_mask, 0, g).any())


# ------------------------------------------------------------------------------------------------------
# The model's three losses end to end against the references
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temporal_target", ["cross_modal", "intra_modal"])
def test_model_losses_match_reference(temporal_target):
    model = LocVTPModel(tiny_config(temporal_target=temporal_target)).double().eval()
    ids, attn = sentence_batch()
    pixels = torch.randn(3, 5, 2, 3, 16, 16, dtype=torch.float64)
    clip_mask = torch.ones(3, 5, dtype=torch.long)
    clip_mask[1, 3:] = 0
    out = model(
        input_ids=ids, pixel_values=pixels, attention_mask=attn, clip_mask=clip_mask, return_loss=True,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    wmask = ref_word_mask(ids.tolist(), attn.tolist())
    assert out.word_mask.tolist() == wmask
    assert [sum(row) for row in wmask] == [5, 2, 3]
    cmask = clip_mask.bool().tolist()
    v, q = to_list(out.clip_embeds), to_list(out.word_embeds)

    expected_coarse, logits = ref_coarse(v, q, cmask, wmask)
    assert out.loss_coarse.item() == pytest.approx(expected_coarse, rel=1e-9)
    torch.testing.assert_close(out.logits_per_video, torch.tensor(logits, dtype=torch.float64))

    sets = ref_positive_sets(v, q, cmask, wmask, 3, "clip_topk")
    positives = [[[0.0] * 8 for _ in range(5)] for _ in range(3)]
    for (b, t), chosen in sets.items():
        positives[b][t] = mean_vec([q[b][s] for s in chosen])  # default pooling "mean": not re-normalised
        torch.testing.assert_close(
            out.positive_embeds[b, t], torch.tensor(positives[b][t], dtype=torch.float64)
        )
    negatives = [q[b][s] for b in range(3) for s in range(7) if wmask[b][s]]
    assert len(negatives) == 10  # padding, [CLS] and [SEP] are not negatives
    assert out.loss_fine.item() == pytest.approx(
        ref_infonce_per_video(v, positives, cmask, negatives, positive_in_denominator=True), rel=1e-9
    )

    delta = out.temporal_offsets.tolist()
    for b in range(3):
        for t in range(5):
            if cmask[b][t]:
                assert 0 < abs(delta[b][t]) <= 4 and cmask[b][t + delta[b][t]]
    z = ref_warp(v, delta, to_list(model.warping_head.proj.weight))
    if temporal_target == "cross_modal":
        expected_t = ref_infonce_per_video(z, positives, cmask, negatives, positive_in_denominator=True)
    else:
        all_clips = [v[b][t] for b in range(3) for t in range(5) if cmask[b][t]]
        expected_t = ref_infonce_per_video(z, v, cmask, all_clips)
    assert out.loss_temporal.item() == pytest.approx(expected_t, rel=1e-9)
    expected_total = 0.5 * expected_coarse + out.loss_fine.item() + expected_t
    assert out.loss.item() == pytest.approx(expected_total, rel=1e-9)


def test_model_rejects_sentence_without_real_words_and_bad_offsets():
    model = LocVTPModel(tiny_config()).eval()
    ids = torch.tensor([[1, 5, 6, 2], [1, 2, 0, 0]])
    attn = (ids != 0).long()
    pixels = torch.randn(2, 3, 2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"sentences \[1\] have no real word"):
        model(input_ids=ids, pixel_values=pixels, attention_mask=attn, return_loss=True)
    ids[1, 1] = 7
    with pytest.raises(ValueError, match="temporal_offsets"):
        model(
            input_ids=ids, pixel_values=pixels, attention_mask=attn, return_loss=True,
            temporal_offsets=torch.tensor([[0, 0, 1], [0, 0, 0]]),
        )  # fmt: skip


def test_word_candidate_mask_limits_positives_and_negatives():
    # sentence 0 has 5 real words; only words 1, 3, 5 are candidates (e.g. 2 and 4 are "##" pieces or
    # punctuation); sentence 2 allows none, so it keeps its real words
    model = LocVTPModel(tiny_config()).double().eval()
    ids, attn = sentence_batch()
    pixels = torch.randn(3, 5, 2, 3, 16, 16, dtype=torch.float64)
    candidates = attn.clone()
    candidates[0, [2, 4]] = 0
    candidates[2] = 0
    out = model(
        input_ids=ids, pixel_values=pixels, attention_mask=attn, return_loss=True,
        word_candidate_mask=candidates, generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    real = torch.tensor(ref_word_mask(ids.tolist(), attn.tolist()))
    expected_mask = real.clone()
    expected_mask[0, [2, 4]] = 0
    assert out.word_candidate_mask.tolist() == expected_mask.tolist()
    v, q = to_list(out.clip_embeds), to_list(out.word_embeds)
    cmask = [[True] * 5] * 3
    sets = ref_positive_sets(v, q, cmask, expected_mask.tolist(), 3, "clip_topk")
    for (b, t), chosen in sets.items():
        assert all(expected_mask[b, s] for s in chosen)
        expected = torch.tensor(mean_vec([q[b][s] for s in chosen]), dtype=torch.float64)
        torch.testing.assert_close(out.positive_embeds[b, t], expected)
    negatives = [q[b][s] for b in range(3) for s in range(7) if expected_mask[b, s]]
    positives = [[mean_vec([q[b][s] for s in sets[(b, t)]]) for t in range(5)] for b in range(3)]
    assert out.loss_fine.item() == pytest.approx(
        ref_infonce_per_video(v, positives, cmask, negatives, positive_in_denominator=True), rel=1e-9
    )
    # the sentence embedding still pools every real token
    torch.testing.assert_close(out.text_embeds, model.get_text_features(ids, attn).pooler_output)
