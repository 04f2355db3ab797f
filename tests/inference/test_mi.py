"""MI estimation against closed forms: the oracle critic on 20-d Gaussians, trained critics on a
low-dimensional Gaussian, and the Barber–Agakov bound from Pyro models (continuous and discrete)."""
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import pprl
from pprl.inference.barber_agakov import barber_agakov, barber_agakov_terms
from pprl.inference.bounds import get_bound, infonce, nwj
from pprl.inference.mi import estimate_mi


pytestmark = pytest.mark.usefixtures("single_thread")


def gaussian_pairs(n, dim, mi, seed, dtype=torch.float64):
    """y = ρx + √(1−ρ²)ε in ``dim`` dimensions with I(X; Y) = −(dim/2) log(1 − ρ²) = ``mi``."""
    rho = math.sqrt(1 - math.exp(-2 * mi / dim))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*n, dim, generator=g, dtype=dtype)
    y = rho * x + math.sqrt(1 - rho ** 2) * torch.randn(*n, dim, generator=g, dtype=dtype)
    return x, y, rho


def log_density_ratio(x, y, rho):
    """Oracle critic log r(x_i, y_j) = log p(y_j | x_i) − log p(y_j) for every pair → [..., K, K]."""
    s2 = 1 - rho ** 2
    yy = y.square().sum(-1).unsqueeze(-2)  # |y_j|², over columns
    xx = x.square().sum(-1).unsqueeze(-1)  # |x_i|², over rows
    sq_dist = yy - 2 * rho * x @ y.transpose(-1, -2) + rho ** 2 * xx  # |y_j − ρ x_i|²
    return -0.5 * sq_dist / s2 - 0.5 * x.shape[-1] * math.log(s2) + 0.5 * yy


@pytest.mark.parametrize("mi", [2.0, 6.0])
def test_oracle_critic_on_20d_gaussians(mi):
    """NWJ's optimal critic is 1 + log r: its batch mean is unbiased. InfoNCE with log r sits
    just below min(I, log K)."""
    K, B = 64, 3000
    x, y, rho = gaussian_pairs((B, K), 20, mi, seed=int(mi))
    log_r = log_density_ratio(x, y, rho)
    values = nwj(1 + log_r)
    mean, stderr = values.mean().item(), values.std().item() / math.sqrt(B)
    assert abs(mean - mi) < 3 * stderr, (mean, stderr)
    nce = infonce(log_r)
    assert bool((nce <= math.log(K) + 1e-12).all())
    ceiling = min(mi, math.log(K))
    assert ceiling - 0.6 < nce.mean().item() < ceiling


@pytest.mark.parametrize("bound, critic", [("infonce", "separable"), ("nwj", "concat"), ("js", "separable"),
                                           ("smile", "concat"), ("dv", "separable"), ("mine", "concat")])
def test_trained_critic_recovers_known_mi(bound, critic):
    """2-d Gaussians with I = 0.8 nats; held-out estimate within 0.1."""
    x, y, _ = gaussian_pairs((6000,), 2, 0.8, seed=11, dtype=torch.float32)
    est = estimate_mi(x, y, bound=bound, critic=critic, steps=1500, batch_size=128, lr=1e-3, seed=0,
                      critic_options={"hidden": (64, 64)}, progress=False)
    assert abs(est.value - 0.8) < 0.1, str(est)
    assert 0 < est.stderr < 0.1 and len(est.trace) == 1500 and est.num_samples == 1152


def test_independent_data_estimate_near_zero():
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(4000, 3, generator=g), torch.randn(4000, 3, generator=g)
    est = estimate_mi(x, y, bound="nwj", critic="separable", steps=600, batch_size=64, seed=1,
                      critic_options={"hidden": (32,)}, progress=False)
    assert abs(est.value) < 0.05 + 3 * est.stderr, str(est)


def test_estimate_mi_is_seeded_and_keeps_float64():
    x, y, _ = gaussian_pairs((1000,), 1, 0.5, seed=2)
    a = estimate_mi(x.numpy(), y.numpy(), steps=30, batch_size=32, seed=3, progress=False)
    b = estimate_mi(x, y, steps=30, batch_size=32, seed=3, progress=False)
    assert a.value == b.value and np.array_equal(a.trace, b.trace)
    assert isinstance(a.value, float) and "infonce" in str(a)


@pytest.mark.parametrize("kwargs, message", [
    ({"bound": "bogus"}, "unknown MI bound"),
    ({"critic": "bogus"}, "unknown critic"),
    ({"batch_size": 1}, "batch_size must be >= 2"),
    ({"heldout": 1.5}, "heldout must be in"),
    ({"batch_size": 600}, "fewer than batch_size"),
])
def test_estimate_mi_bad_input(kwargs, message):
    x, y, _ = gaussian_pairs((1000,), 1, 0.5, seed=2)
    with pytest.raises(ValueError, match=message):
        estimate_mi(x, y, steps=1, progress=False, **kwargs)


def test_estimate_mi_rejects_mismatched_and_nonfinite_data():
    with pytest.raises(ValueError, match="same number of pairs"):
        estimate_mi(torch.zeros(100, 2), torch.zeros(90, 2), progress=False)
    bad = torch.zeros(100, 2)
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        estimate_mi(bad, torch.zeros(100, 2), progress=False)


# --------------------------------------------------------------------------- Barber–Agakov
RHO, DIM = 0.8, 2
TRUE_GAUSSIAN_MI = -0.5 * DIM * math.log(1 - RHO ** 2)


def gaussian_channel():
    x = pyro.sample("x", dist.Normal(torch.zeros(DIM), 1.0).to_event(1))
    return pyro.sample("y", dist.Normal(RHO * x, math.sqrt(1 - RHO ** 2)).to_event(1))


def linear_decoder(y):
    w = pyro.param("w", torch.tensor(0.0))
    log_s = pyro.param("log_s", torch.tensor(0.0))
    pyro.sample("x", dist.Normal(w * y, log_s.exp()).to_event(1))


def test_barber_agakov_gaussian_exact_decoder_is_tight():
    pyro.clear_param_store()
    pyro.param("w", torch.tensor(RHO))
    pyro.param("log_s", torch.tensor(0.5 * math.log(1 - RHO ** 2)))
    est = barber_agakov(gaussian_channel, linear_decoder, "x", "y", num_samples=20000, progress=False)
    assert abs(est.value - TRUE_GAUSSIAN_MI) < 3 * est.stderr + 1e-9 and est.stderr < 0.02


def test_barber_agakov_gaussian_trains_to_the_truth_and_is_a_bound():
    pyro.clear_param_store()
    untrained = barber_agakov(gaussian_channel, linear_decoder, "x", "y", num_samples=20000, progress=False)
    assert abs(untrained.value) < 0.05  # q = p(x): H(X) + E log p(x) = 0
    est = barber_agakov(gaussian_channel, linear_decoder, "x", "y", num_samples=20000, steps=400,
                        batch_size=256, lr=0.05, progress=False)
    assert abs(est.value - TRUE_GAUSSIAN_MI) < 0.03, str(est)
    assert abs(pyro.param("w").item() - RHO) < 0.05
    assert len(est.trace) == 400 and est.trace[-50:].mean() > est.trace[:10].mean()


PRIOR = torch.tensor([0.5, 0.3, 0.2])
CHANNEL = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.25, 0.25, 0.25, 0.25]])


def discrete_channel():
    x = pyro.sample("x", dist.Categorical(PRIOR))
    return pyro.sample("y", dist.Categorical(CHANNEL[x]))


def exact_discrete_mi():
    joint = PRIOR[:, None] * CHANNEL
    return float((joint * (joint / (PRIOR[:, None] * joint.sum(0))).log()).sum())


def posterior_decoder(y):
    joint = PRIOR[:, None] * CHANNEL
    pyro.sample("x", dist.Categorical(joint.T[y] / joint.sum(0)[y, None]))


def table_decoder(y):
    logits = pyro.param("logits", torch.zeros(4, 3))
    pyro.sample("x", dist.Categorical(logits=logits[y]))


def test_barber_agakov_discrete_exact_posterior_is_tight_and_bad_decoder_is_below():
    truth = exact_discrete_mi()
    est = barber_agakov(discrete_channel, posterior_decoder, "x", "y", num_samples=40000, progress=False)
    assert abs(est.value - truth) < 3 * est.stderr, (str(est), truth)
    uniform = lambda y: pyro.sample("x", dist.Categorical(torch.ones(3) / 3).expand(y.shape))
    loose = barber_agakov(discrete_channel, uniform, "x", "y", num_samples=40000, progress=False)
    entropy = float(dist.Categorical(PRIOR).entropy())
    assert loose.value == pytest.approx(entropy - math.log(3), abs=1e-6) and loose.value < truth


def test_barber_agakov_discrete_decoder_trains_to_the_truth():
    pyro.clear_param_store()
    est = barber_agakov(discrete_channel, table_decoder, "x", "y", num_samples=40000, steps=300, lr=0.1,
                        batch_size=512, progress=False)
    assert abs(est.value - exact_discrete_mi()) < 0.02, str(est)


def test_barber_agakov_terms_are_differentiable_and_sites_are_checked():
    pyro.clear_param_store()
    terms = barber_agakov_terms(gaussian_channel, linear_decoder, "x", "y", 16)
    assert terms.shape == (16,)
    terms.mean().backward()
    w = pyro.get_param_store().get_param("w").unconstrained()
    assert w.grad is not None and w.grad.abs().item() > 0  # the bound's gradient reaches the decoder
    with pytest.raises(ValueError, match="no sample site 'z'"):
        barber_agakov_terms(gaussian_channel, linear_decoder, "z", "y", 4)


def test_public_api():
    from pprl.inference.mi import MIEstimate

    assert pprl.estimate_mi is estimate_mi and pprl.MIEstimate is MIEstimate
    assert pprl.barber_agakov is barber_agakov and {"estimate_mi", "MIEstimate", "barber_agakov"} <= set(pprl.__all__)


@pytest.mark.parametrize("bound, critic", [("infonce", "concat"), ("nwj", "separable"), ("mine", "concat")])
def test_heldout_estimate_is_streamed_one_score_matrix_at_a_time(monkeypatch, bound, critic):
    """The held-out bound is evaluated one K × K score matrix per critic call (memory bounded by one
    training minibatch, however many held-out pairs), and gives the number the former single pass
    over all B held-out batches at once gave."""
    import pprl.inference.mi as mi_module

    made, calls = [], []
    real_make_critic = mi_module.make_critic

    def spying_critic(*args, **kwargs):
        f = real_make_critic(*args, **kwargs)
        f.register_forward_pre_hook(lambda module, inputs: calls.append((torch.is_grad_enabled(),
                                                                         tuple(inputs[0].shape))))
        made.append(f)
        return f

    monkeypatch.setattr(mi_module, "make_critic", spying_critic)
    x, y, _ = gaussian_pairs((1200,), 2, 0.5, seed=3, dtype=torch.float32)
    K, seed, heldout = 32, 5, 0.25
    est = estimate_mi(x, y, bound=bound, critic=critic, steps=30, batch_size=K, heldout=heldout, seed=seed,
                      critic_options={"hidden": (32,)}, preprocess=None, progress=False)
    evaluation = [shape for grad, shape in calls if not grad]
    assert len(evaluation) == 300 // K and all(shape == (K, 2) for shape in evaluation)

    # the former path: every held-out batch in one [B, K, K] pass, with the trained critic
    order = torch.randperm(1200, generator=torch.Generator().manual_seed(seed))
    test = order[:300]
    batches = test[: len(test) // K * K].view(-1, K)
    with torch.no_grad():
        values = get_bound(bound).estimate(made[0](x[batches], y[batches])).double()
    assert est.num_samples == batches.numel()
    # the same critic on the same pairs: the same number (bit-identical on the CPUs tried; the
    # tolerance only allows a BLAS that blocks a [K², H] product differently from a [B·K², H] one)
    assert est.value == pytest.approx(float(values.mean()), rel=0, abs=1e-6)
    assert est.stderr == pytest.approx(float(values.std() / math.sqrt(len(values))), rel=1e-4)
