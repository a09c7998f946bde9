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


def test_every_product_runs_on_whole_chunks_whatever_the_token_count(monkeypatch):
    """oneDNN compiles a primitive for each shape it meets: the products' row counts stay multiples
    of the chunk, so batches of other token counts bring no new ones."""
    from torch.utils._python_dispatch import TorchDispatchMode

    monkeypatch.setattr(loss_module, "_CHUNK_ROWS", 4)
    E, V, shapes = 6, 13, []

    class Products(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.mm.default:
                shapes.append((*args[0].shape, args[1].shape[1]))
            return func(*args, **(kwargs or {}))

    for n in (5, 7, 11):
        x, weight, bias = torch.randn(n, E, requires_grad=True), torch.randn(V, E, requires_grad=True), torch.zeros(V, requires_grad=True)
        with Products():
            linear_cross_entropy(x, weight, bias, torch.randint(0, V, (n,)), 0.1).backward()
        assert x.grad.shape == (n, E)
    assert len(shapes) == 2 + 2 + 3 + 3 * 2  # forward chunks, then two products backward per call
    assert all(dim in (E, V) or dim % 4 == 0 for shape in shapes for dim in shape)
