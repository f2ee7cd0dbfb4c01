"""TCA losses against naive float64 per-element references (values and gradients) and hand-worked cases."""

import math

import pytest
import torch

from vidtempo.training.tca_losses import (
    circle_loss,
    compute_loss,
    contrastive_similarities,
    info_nce_loss,
    triplet_loss,
)


def naive_info_nce(sp, sn, tau):
    """Per-anchor −log softmax written element by element (python floats via float64 tensors)."""
    losses = []
    for i in range(sp.shape[0]):
        numerator = torch.exp(sp[i] / tau)
        denominator = numerator + sum(torch.exp(sn[i, j] / tau) for j in range(sn.shape[1]))
        losses.append(-torch.log(numerator / denominator))
    return torch.stack(losses).mean()


def naive_circle(sp, sn, m, gamma):
    """The paper's formula, positive = its own column; α treated as constants. Uses a shift by the
    row maximum only to keep float64 exp finite at γ = 256 (exact algebraically)."""
    losses = []
    for i in range(sp.shape[0]):
        alpha_p = max(1 + m - sp[i].item(), 0.0)
        logit_p = gamma * alpha_p * (sp[i] - (1 - m))
        logits_n = [gamma * max(sn[i, j].item() + m, 0.0) * (sn[i, j] - m) for j in range(sn.shape[1])]
        shift = max([logit_p.item()] + [x.item() for x in logits_n])
        denominator = torch.exp(logit_p - shift) + sum(torch.exp(x - shift) for x in logits_n)
        # −log(e^{l_p} / Σ e^{l}) = shift − l_p + log Σ e^{l − shift}  (no underflow of e^{l_p − shift})
        losses.append(shift - logit_p + torch.log(denominator))
    return torch.stack(losses).mean()


def naive_triplet(sp, sn, margin):
    total = []
    for i in range(sp.shape[0]):
        per = [torch.clamp(sn[i, j] - sp[i] + margin, min=0) for j in range(sn.shape[1])]
        total.append(sum(per) / len(per))
    return torch.stack(total).mean()


def random_sims(batch=5, negatives=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    sp = (torch.rand(batch, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_()
    sn = (torch.rand(batch, negatives, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_()
    return sp, sn


def check_against(ours_fn, naive_fn, seed=0, tol=1e-10):
    sp, sn = random_sims(seed=seed)
    ours = ours_fn(sp, sn)
    g_ours = torch.autograd.grad(ours, (sp, sn))
    sp2, sn2 = sp.detach().clone().requires_grad_(), sn.detach().clone().requires_grad_()
    ref = naive_fn(sp2, sn2)
    g_ref = torch.autograd.grad(ref, (sp2, sn2))
    torch.testing.assert_close(ours, ref, atol=tol, rtol=tol)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("tau", [0.07, 1.0])
def test_info_nce_matches_naive(seed, tau):
    check_against(lambda a, b: info_nce_loss(a, b, tau), lambda a, b: naive_info_nce(a, b, tau), seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma", [1.0, 32.0, 256.0])
def test_circle_matches_naive(seed, gamma):
    check_against(
        lambda a, b: circle_loss(a, b, 0.25, gamma), lambda a, b: naive_circle(a, b, 0.25, gamma), seed
    )


@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_triplet_matches_naive(margin):
    check_against(lambda a, b: triplet_loss(a, b, margin), lambda a, b: naive_triplet(a, b, margin))


def test_circle_hand_worked():
    # s_p = 0.5, s_n = [0.5, -0.5], m = 0.25, γ = 2:
    # α_p = 0.75, logit_p = 2·0.75·(0.5−0.75) = −0.375; α_n = [0.75, 0] -> logits_n = [2·0.75·0.25, 0] = [0.375, 0]
    loss = circle_loss(torch.tensor([0.5]), torch.tensor([[0.5, -0.5]]), margin=0.25, gamma=2.0)
    expected = -math.log(math.exp(-0.375) / (math.exp(-0.375) + math.exp(0.375) + 1.0))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_circle_positive_is_own_column_not_row():
    """The authors' bug weighted each row by a quantity of another anchor; with our formula an anchor's
    loss depends only on its own positive, so permuting the other rows changes nothing."""
    sp, sn = random_sims(batch=4, negatives=3, seed=5)
    per = circle_loss(sp, sn, reduction="none")
    perm = torch.tensor([0, 3, 1, 2])
    per_perm = circle_loss(sp[perm], sn[perm], reduction="none")
    torch.testing.assert_close(per_perm, per[perm])
    single = circle_loss(sp[:1], sn[:1], reduction="none")
    torch.testing.assert_close(single, per[:1])


def test_info_nce_hand_worked_and_uniform_case():
    loss = info_nce_loss(torch.tensor([1.0]), torch.tensor([[0.0, 0.0]]), temperature=1.0)
    assert loss.item() == pytest.approx(-math.log(math.e / (math.e + 2)), rel=1e-6)
    # all similarities equal -> log(1 + N)
    loss = info_nce_loss(torch.zeros(3), torch.zeros(3, 9), temperature=0.07)
    assert loss.item() == pytest.approx(math.log(10), rel=1e-6)


def test_triplet_hand_worked():
    loss = triplet_loss(torch.tensor([0.5]), torch.tensor([[0.9, -0.9]]), margin=0.2)
    assert loss.item() == pytest.approx((0.6 + 0.0) / 2)


def test_stable_at_gamma_256_in_float32():
    """Naive exp overflows float32 at γ = 256 (e^{256·0.5} ≈ e^{128}); the loss must stay finite and
    equal the float64 value."""
    sp = torch.tensor([-0.9, 0.99], dtype=torch.float32, requires_grad=True)
    sn = torch.tensor([[0.99, 0.98, -1.0], [0.9, -0.5, 0.1]], dtype=torch.float32, requires_grad=True)
    loss = circle_loss(sp, sn, gamma=256.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(sp.grad).all() and torch.isfinite(sn.grad).all()
    reference = naive_circle(sp.detach().double(), sn.detach().double(), 0.25, 256.0)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    assert loss.item() > 100  # a hard case costs a lot


def test_similarities_and_dispatch():
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(3, 8, generator=g), dim=-1)
    p = torch.nn.functional.normalize(torch.randn(3, 8, generator=g), dim=-1)
    n = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=-1)
    sp, sn = contrastive_similarities(a, p, n)
    for i in range(3):
        assert sp[i].item() == pytest.approx(sum(a[i, k].item() * p[i, k].item() for k in range(8)), abs=1e-6)
        for j in range(5):
            assert sn[i, j].item() == pytest.approx(
                sum(a[i, k].item() * n[j, k].item() for k in range(8)), abs=1e-6
            )
    torch.testing.assert_close(compute_loss("infonce", sp, sn, temperature=0.1), info_nce_loss(sp, sn, 0.1))
    with pytest.raises(ValueError, match="unknown loss"):
        compute_loss("hinge", sp, sn)
    with pytest.raises(ValueError, match="negative_sim"):
        circle_loss(sp, sn[0])
