import pytest
import torch
import torch.nn.functional as F

from seq2seq.training import loss as loss_module
from seq2seq.training.loss import linear_cross_entropy


def reference(x, weight, bias, target, smoothing):
    return F.cross_entropy(F.linear(x, weight, bias).float(), target, label_smoothing=smoothing, reduction="sum")


def grads(fn, x, weight, bias, target, smoothing, autocast):
    x, weight, bias = (t.detach().clone().requires_grad_() for t in (x, weight, bias))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = fn(x, weight, bias, target, smoothing)
    (loss / 7).backward()  # a non-unit upstream gradient, as the training loop's mean over tokens
    return loss.detach(), x.grad, weight.grad, bias.grad


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_fused_loss_and_gradients_equal_cross_entropy_in_fp32(smoothing, monkeypatch):
    monkeypatch.setattr(loss_module, "_CHUNK_ROWS", 4)  # several chunks, the last one partial
    g = torch.Generator().manual_seed(0)
    x, weight, bias = torch.randn(11, 6, generator=g), torch.randn(13, 6, generator=g), torch.randn(13, generator=g)
    target = torch.randint(0, 13, (11,), generator=g)
    expected = grads(reference, x, weight, bias, target, smoothing, autocast=False)
    got = grads(linear_cross_entropy, x, weight, bias, target, smoothing, autocast=False)
    for e, o in zip(expected, got):
        torch.testing.assert_close(o, e, rtol=1e-5, atol=1e-5)


def test_fused_loss_under_bf16_autocast_stays_close_and_keeps_parameter_dtypes():
    g = torch.Generator().manual_seed(1)
    x, weight, bias = torch.randn(300, 32, generator=g), torch.randn(50, 32, generator=g) * 0.3, torch.randn(50, generator=g)
    target = torch.randint(0, 50, (300,), generator=g)
    expected = grads(reference, x, weight, bias, target, 0.1, autocast=True)
    got = grads(linear_cross_entropy, x, weight, bias, target, 0.1, autocast=True)
    assert got[2].dtype == torch.float32 and got[3].dtype == torch.float32
    torch.testing.assert_close(got[0], expected[0], rtol=2e-3, atol=0)
    for e, o in zip(expected[1:], got[1:]):
        assert (o.float() - e.float()).abs().max() <= 0.02 * e.float().abs().max()


def test_fused_loss_stays_exact_where_the_target_probability_underflows():
    # Logits 200 apart: the targets of rows 0 and 2 get a probability of exp(-200), which fp32 holds
    # only as 0, so their log-sum-exp cannot be read off p_t.
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    weight = torch.tensor([[200.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    bias = torch.tensor([0.0, 0.5, -1.0])
    target = torch.tensor([2, 0, 1])
    for smoothing in (0.0, 0.1):
        expected = grads(reference, x, weight, bias, target, smoothing, autocast=False)
        got = grads(linear_cross_entropy, x, weight, bias, target, smoothing, autocast=False)
        assert got[0] > 199
        for e, o in zip(expected, got):
            torch.testing.assert_close(o, e, rtol=1e-5, atol=1e-5)


def test_fused_loss_without_gradients_skips_the_gradient_buffer():
    x, weight, bias = torch.randn(5, 4), torch.randn(9, 4), torch.zeros(9)
    target = torch.tensor([0, 1, 2, 3, 8])
    with torch.inference_mode():
        got = linear_cross_entropy(x, weight, bias, target, 0.0)
    torch.testing.assert_close(got, reference(x, weight, bias, target, 0.0))
