"""Critics: score-matrix shapes, agreement with explicit per-pair loops, options and errors."""
import pytest
import torch

from pprl.models.critics import CRITICS, BilinearCritic, ConcatCritic, SeparableCritic, make_critic


pytestmark = pytest.mark.usefixtures("single_thread")


def pair(K=5, dx=3, dy=2, lead=(), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*lead, K, dx, generator=g, dtype=dtype),
            torch.randn(*lead, K, dy, generator=g, dtype=dtype))


@pytest.mark.parametrize("name", CRITICS)
def test_shapes_and_batched_inputs(name):
    critic = make_critic(name, 3, 2, dtype=torch.float64)
    x, y = pair(K=7)
    assert critic(x, y).shape == (7, 7)
    xb, yb = pair(K=4, lead=(2, 3))
    scores = critic(xb, yb)
    assert scores.shape == (2, 3, 4, 4)
    torch.testing.assert_close(scores[1, 2], critic(xb[1, 2], yb[1, 2]))
    assert critic(*pair(K=4, dtype=torch.float64)).dtype == torch.float64


def test_separable_equals_double_loop():
    critic = SeparableCritic(3, 2, hidden=(8, 8), embed_dim=4, activation="tanh", dtype=torch.float64)
    x, y = pair(K=5)
    scores = critic(x, y)
    for i in range(5):
        for j in range(5):
            gx = critic.g.layers[2](torch.tanh(critic.g.layers[1](torch.tanh(critic.g.layers[0](x[i])))))
            hy = critic.h.layers[2](torch.tanh(critic.h.layers[1](torch.tanh(critic.h.layers[0](y[j])))))
            torch.testing.assert_close(scores[i, j], gx @ hy)


@pytest.mark.parametrize("hidden", [(16, 8), (6,), ()])
def test_concat_equals_mlp_on_concatenated_pairs(hidden):
    critic = ConcatCritic(3, 2, hidden=hidden, activation="elu", dtype=torch.float64)
    x, y = pair(K=6)
    scores = critic(x, y)
    for i in range(6):
        for j in range(6):
            h = torch.cat([x[i], y[j]])
            for k, layer in enumerate(critic.net.layers):
                h = layer(torch.nn.functional.elu(h) if k > 0 else h)
            torch.testing.assert_close(scores[i, j], h.squeeze(-1))


def test_bilinear_and_gradients():
    critic = BilinearCritic(3, 2, dtype=torch.float64)
    x, y = pair(K=4)
    scores = critic(x, y)
    for i in range(4):
        for j in range(4):
            torch.testing.assert_close(scores[i, j], x[i] @ critic.weight @ y[j])
    scores.diagonal().sum().backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_device_dtype_and_to():
    critic = make_critic("concat", 2, 2, hidden=(4,))
    assert next(critic.parameters()).dtype == torch.float32
    critic = critic.to(torch.float64)
    assert critic(*pair(K=3, dx=2, dy=2)).dtype == torch.float64
    critic = make_critic("separable", 2, 2, hidden=(4,), embed_dim=3, device="cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in critic.parameters())


@pytest.mark.parametrize("call, message", [
    (lambda: make_critic("mlp", 2, 2), "allowed: separable, concat, bilinear"),
    (lambda: make_critic("bilinear", 2, 2, hidden=(4,)), "allowed: device, dtype"),
    (lambda: make_critic("separable", 2, 2, width=3), "allowed: hidden, embed_dim, activation, device, dtype"),
    (lambda: SeparableCritic(2, 2, activation="gelu_fast"), "unknown activation 'gelu_fast'"),
    (lambda: ConcatCritic(0, 2), "dx must be a positive integer"),
    (lambda: ConcatCritic(2, 2, hidden=(4, -1)), "hidden width"),
    (lambda: SeparableCritic(2, 2, embed_dim=0), "embed_dim"),
    (lambda: BilinearCritic(3, 2)(torch.zeros(4, 2), torch.zeros(4, 2)), "x must be a [..., K, 3] tensor"),
    (lambda: ConcatCritic(3, 2)(torch.zeros(4, 3), torch.zeros(4)), "y must be a [..., K, 2] tensor"),
])
def test_errors(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
