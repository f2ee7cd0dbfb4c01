"""The feature-level LocVTP ablation: the arms' losses against a naive loop, paired and reproducible runs,
the t-interval and decision rule by hand, chance rows on a planted toy set."""

import math

import numpy as np
import pytest
import torch

from vidtempo.cli.ablation_locvtp import build_parser
from vidtempo.training.locvtp_ablation import (
    ARMS,
    AblationData,
    FeatureLocVTP,
    arm_loss,
    chance_rows,
    decide,
    evaluate_arm,
    t_interval,
    train_arm,
)


def toy_data(videos=6, frames=8, tokens=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(videos, tokens, dtype=torch.bool)
    mask[:, -1] = False
    queries = [
        {
            "video": v,
            "start": 1.0,
            "end": 2.0,
            "tokens": torch.randn(tokens, 384, generator=g),
            "mask": mask[0],
        }
        for v in range(videos)
    ]
    return AblationData(
        frame_features=torch.randn(videos, frames, 1280, generator=g),
        frames_per_clip=2,
        clip_seconds=0.5,
        caption_tokens=torch.randn(videos, tokens, 384, generator=g),
        caption_mask=mask,
        caption_candidates=mask.clone(),
        queries=queries,
    )


def naive_coarse(video, text, tau=0.07):
    n = len(video)
    total = 0.0
    for i in range(n):
        row = [float(video[i] @ text[j]) / tau for j in range(n)]
        col = [float(video[j] @ text[i]) / tau for j in range(n)]
        total += -(row[i] - math.log(sum(math.exp(x) for x in row)))
        total += -(col[i] - math.log(sum(math.exp(x) for x in col)))
    return total / (2 * n)


def test_coarse_arm_is_half_the_symmetric_infonce_of_a_naive_loop():
    torch.manual_seed(0)
    model = FeatureLocVTP().eval()
    data = toy_data()
    clips = model.clips(data.frame_features, 2).double()
    words = model.words(data.caption_tokens, data.caption_mask).double()
    offsets = torch.ones(clips.shape[:2], dtype=torch.long)
    loss = arm_loss(
        model.double(), ARMS["L_c"], clips, words, data.caption_mask, data.caption_candidates, offsets
    )
    video = torch.nn.functional.normalize(clips.mean(1), dim=-1)
    text = FeatureLocVTP.sentence(words, data.caption_mask)
    assert float(loss.detach()) == pytest.approx(0.5 * naive_coarse(video, text), rel=1e-9)
    full = arm_loss(
        model, ARMS["L_c+L_f+L_t"], clips, words, data.caption_mask, data.caption_candidates, offsets
    )
    assert float(full.detach()) > float(loss.detach())  # the fine-grained terms add positive InfoNCE losses


def test_runs_are_paired_and_reproducible():
    data = toy_data()
    torch.manual_seed(3)
    init = FeatureLocVTP()
    before = {k: v.clone() for k, v in init.state_dict().items()}
    videos = np.arange(6)
    a = train_arm(init, data, videos, "L_c+L_f+L_t", 1e-3, seed=1, steps=3, batch_size=4)
    b = train_arm(init, data, videos, "L_c+L_f+L_t", 1e-3, seed=1, steps=3, batch_size=4)
    c = train_arm(init, data, videos, "L_c", 1e-3, seed=1, steps=3, batch_size=4)
    for k, v in init.state_dict().items():
        torch.testing.assert_close(v, before[k])  # the shared initialisation is never modified
    for k in before:
        torch.testing.assert_close(a.state_dict()[k], b.state_dict()[k])
    assert not torch.equal(a.state_dict()["frame_in.weight"], c.state_dict()["frame_in.weight"])
    metrics = evaluate_arm(a, data, videos)
    assert set(metrics) >= {"mIoU", "R@1,IoU=0.5", "R@5,IoU=0.7", "t2v R@5"}
    rows = chance_rows(data, videos, init)
    # 4 clips of 0.5 s, query [1, 2]: the whole video [0, 2] has IoU 0.5
    assert rows["whole_video"]["mIoU"] == pytest.approx(50.0)
    assert rows["whole_video"]["t2v R@5"] == pytest.approx(100 * 5 / 6)


def test_t_interval_and_decision_by_hand():
    mean, low, high = t_interval(np.array([1.0, 2.0, 3.0]))
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * sd 1 / sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert decide((2.0, 0.1, 3.9)) == "beats L_c"
    assert decide((-2.0, -3.9, -0.1)) == "L_c beats it"
    assert decide((0.5, -0.4, 1.4)) == "no detectable difference"


def test_parser_defaults_follow_the_protocol():
    args = build_parser().parse_args(["--output", "x"])
    assert args.seeds == list(range(8)) and args.lrs == [3e-4, 1e-3, 3e-3]
