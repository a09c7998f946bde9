"""seq2seq/model/dropout.py: the rate, the mean, seeded masks and their gradients."""

import pytest
import torch

from seq2seq.model.dropout import Dropout, keep_mask


def test_dropout_drops_at_rate_p_and_keeps_the_mean():
    torch.manual_seed(0)
    drop = Dropout(0.3)
    x = torch.ones(200_000)
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.005
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.7))
    assert abs(y.mean().item() - 1.0) < 0.01
    drop.eval()
    assert drop(x) is x


def test_dropout_masks_are_seeded_and_gradients_follow_the_mask():
    torch.manual_seed(3)
    a = keep_mask(torch.Size([3, 5, 7]), 0.5)
    torch.manual_seed(3)
    assert torch.equal(a, keep_mask(torch.Size([3, 5, 7]), 0.5))
    assert a.shape == (3, 5, 7) and 0 < a.sum() < a.numel()
    x = torch.randn(4, 9, requires_grad=True)
    torch.manual_seed(4)
    y = Dropout(0.25)(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() / 0.75)


def test_dropout_rejects_p_outside_0_1():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Dropout(1.0)
