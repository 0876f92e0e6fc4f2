"""Loss terms against hand-computed values on tiny tensors; queue behaviour and the enqueue quirk."""

from __future__ import annotations

import math

import pytest
import torch

from models.losses import (
    StyleQueues,
    cycle_l1,
    hinge_d,
    hinge_g,
    info_nce,
    random_unit_columns,
    style_nce,
)


def _ce0(logits: list[float]) -> float:
    return -logits[0] + math.log(sum(math.exp(v) for v in logits))


def test_info_nce_hand_value() -> None:
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[0.6, 0.8]])
    queue = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # columns (0, 1) and (-1, 0)
    # logits / τ = [0.6, 0, -1] / 0.5
    expected = _ce0([1.2, 0.0, -2.0])
    assert info_nce(q, k, queue, 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_batch_mean_and_gradients_reach_q_and_k() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    k = torch.tensor([[1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    queue = torch.tensor([[1.0], [0.0]])
    loss = info_nce(q, k, queue, 1.0)
    expected = 0.5 * (_ce0([1.0, 1.0]) + _ce0([0.0, 0.0]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert q.grad is not None and k.grad is not None and k.grad.abs().sum() > 0


def test_hinge_values() -> None:
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - x) = 0, 0.5, 2   → mean 5/6
    fake = torch.tensor([-2.0, 0.0, 1.0])  # relu(1 + x) = 0, 1, 2     → mean 1
    assert hinge_d(real, fake).item() == pytest.approx(0.5 * (5 / 6 + 1))
    assert hinge_g(fake).item() == pytest.approx((3 + 1 + 0) / 3)  # relu(1 - x): 3, 1, 0


def test_cycle_l1_value() -> None:
    rec = torch.tensor([[0.5, -0.5], [1.0, 0.0]])
    real = torch.zeros(2, 2)
    assert cycle_l1(rec, real).item() == pytest.approx(0.5)


def test_queue_init_is_unit_columns_and_enqueue_wraps() -> None:
    q = StyleQueues((0, 2), dim=4, size=4, generator=torch.Generator().manual_seed(0))
    assert not hasattr(q, "queue_data_B1")  # unused layer not stored
    torch.testing.assert_close(q.queue(2).norm(dim=0), torch.ones(4))
    keys = torch.eye(4)[:2]  # two unit rows
    q.enqueue(0, keys)
    q.enqueue(0, keys * 2)
    q.enqueue(0, keys * 3)  # wraps to the start
    data = q.queue(0)
    torch.testing.assert_close(data[:, 0:2], (keys * 3).T)
    torch.testing.assert_close(data[:, 2:4], (keys * 2).T)
    assert int(q.queue_ptr_B0) == 2
    with pytest.raises(ValueError, match="multiple"):
        q.enqueue(0, torch.zeros(3, 4))


def test_same_seed_same_queue_as_reference_order() -> None:
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    q = StyleQueues((1,), dim=8, size=4, generator=g1)
    random_unit_columns(8, 4, g2)  # layer 0 is drawn (and dropped) first, as upstream
    torch.testing.assert_close(q.queue(1), random_unit_columns(8, 4, g2))


def test_enqueue_before_loss_makes_q_its_own_negative() -> None:
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[0.0, 1.0]])
    init = torch.tensor([[0.0, 0.0], [-1.0, -1.0]])  # columns (0, -1), (0, -1)

    def fresh() -> StyleQueues:
        s = StyleQueues((0,), dim=2, size=2)
        s.queue_data_B0.copy_(init)
        return s

    quirk = style_nce([q], [k], fresh(), 1.0, enqueue=True, enqueue_before_loss=True)
    # queue after enqueue: columns q=(1,0), (0,-1) → logits [q·k, q·q, 0] = [0, 1, 0]
    assert quirk.item() == pytest.approx(_ce0([0.0, 1.0, 0.0]), rel=1e-6)
    fixed_queues = fresh()
    fixed = style_nce([q], [k], fixed_queues, 1.0, enqueue=True, enqueue_before_loss=False)
    assert fixed.item() == pytest.approx(_ce0([0.0, 0.0, 0.0]), rel=1e-6)
    torch.testing.assert_close(fixed_queues.queue(0)[:, 0], q[0])  # enqueued afterwards
