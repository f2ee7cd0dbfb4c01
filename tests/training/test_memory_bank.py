"""Memory bank: FIFO order against a plain python list, normalisation, state round trip, momentum encoder."""

import pytest
import torch
import torch.nn.functional as F

from vidtempo.training.tca_memory_bank import MemoryBank, MomentumKeyEncoder


def test_fifo_matches_reference_list():
    g = torch.Generator().manual_seed(0)
    bank = MemoryBank(size=10, dim=4)
    reference: list[torch.Tensor] = []  # newest last
    for n in [3, 4, 5, 1, 12, 2]:  # includes a wrap-around and a push larger than the bank
        keys = torch.randn(n, 4, generator=g)
        bank.enqueue(keys)
        reference = (reference + list(F.normalize(keys, dim=-1)))[-10:]
        assert bank.num_filled == len(reference)
        stored = bank.negatives()
        # same multiset of rows: match each reference row to one stored row
        assert stored.shape == (len(reference), 4)
        expected = torch.stack(reference)
        order_ours = sorted(map(tuple, stored.tolist()))
        order_ref = sorted(map(tuple, expected.tolist()))
        assert torch.allclose(torch.tensor(order_ours), torch.tensor(order_ref), atol=1e-6)


def test_oldest_entries_are_overwritten_first():
    bank = MemoryBank(size=4, dim=2)
    bank.enqueue(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    bank.enqueue(torch.tensor([[-1.0, 0.0], [0.0, -1.0]]))  # slot 3, then wraps to slot 0 (the oldest)
    s = 2**-0.5
    expected = torch.tensor([[0.0, -1.0], [0.0, 1.0], [s, s], [-1.0, 0.0]])
    torch.testing.assert_close(bank.queue, expected)
    assert bank.pointer == 1 and bank.num_filled == 4


def test_entries_are_unit_norm_and_detached():
    keys = torch.randn(6, 8, requires_grad=True) * 5
    bank = MemoryBank(size=16, dim=8)
    bank.enqueue(keys)
    torch.testing.assert_close(bank.negatives().norm(dim=-1), torch.ones(6))
    assert not bank.negatives().requires_grad


def test_gather_fn_enqueues_all_processes_keys():
    """With a gather (here: a fake 2-process gather that concatenates a second rank's keys) every
    entry of every rank ends up in the bank, in rank order."""
    other = F.normalize(torch.randn(3, 4), dim=-1)  # the other rank normalises before the gather
    bank = MemoryBank(size=8, dim=4, gather_fn=lambda k: torch.cat([k, other]))
    mine = torch.randn(3, 4)
    bank.enqueue(mine)
    torch.testing.assert_close(bank.negatives(), F.normalize(torch.cat([mine, other]), dim=-1))


def test_state_dict_round_trip_and_shape_check():
    bank = MemoryBank(size=5, dim=3)
    bank.enqueue(torch.randn(7, 3))
    restored = MemoryBank(size=5, dim=3)
    restored.load_state_dict(bank.state_dict())
    torch.testing.assert_close(restored.queue, bank.queue)
    assert (restored.pointer, restored.num_filled) == (bank.pointer, bank.num_filled)
    assert restored.fingerprint() == bank.fingerprint()
    restored.enqueue(torch.ones(1, 3))
    assert restored.fingerprint() != bank.fingerprint()
    with pytest.raises(ValueError, match="bank_size"):
        MemoryBank(size=6, dim=3).load_state_dict(bank.state_dict())
    with pytest.raises(ValueError, match=r"\[n, 3\]"):
        bank.enqueue(torch.ones(2, 4))


def test_momentum_key_encoder_update_rule():
    model = torch.nn.Linear(3, 2)
    key = MomentumKeyEncoder(model, momentum=0.9)
    old = [p.detach().clone() for p in key.encoder.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    key.update(model)
    for k, o, q in zip(key.encoder.parameters(), old, model.parameters(), strict=True):
        torch.testing.assert_close(k, 0.9 * o + 0.1 * q)
        assert not k.requires_grad
    zero = MomentumKeyEncoder(model, momentum=0.0)
    with torch.no_grad():
        model.weight.mul_(3)
    zero.update(model)
    torch.testing.assert_close(zero.encoder.weight, model.weight)  # momentum 0 = current weights
    x = torch.randn(4, 3)
    torch.testing.assert_close(zero(x), model(x))
    with pytest.raises(ValueError, match="momentum"):
        MomentumKeyEncoder(model, momentum=1.0)
