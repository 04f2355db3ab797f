"""A fitted latent model's transition as an empowerment channel (issue 14 item 5, issue 15 item 4):
its linearised empowerment against the water-filling capacity of the same linear-Gaussian system,
its rollout against the model's own, and its errors."""
import math

import pytest
import torch

from pprl.empowerment import LatentModelChannel, LinearGaussianChannel, linearised_empowerment, water_filling
from pprl.empowerment.exact import linear_gaussian_empowerment
from pprl.inference.amortised import AmortisedGuide
from pprl.inference.latent_posterior import LatentPosterior
from pprl.models.latent import build_latent_model, inverse_softplus
from pprl.rng import seeded
from pprl.spec import parse_inference_spec

pytestmark = pytest.mark.usefixtures("single_thread")

LINEAR = {"type": "latent", "observation": {"kind": "vector", "size": 3}, "latent_size": 2,
          "encoder": {"type": "linear"}, "decoder": {"type": "linear"}, "transition": {"type": "linear"},
          "likelihood": {"type": "normal", "scale": 0.5}, "sequence_length": 5}
A = torch.tensor([[1.05, 0.2], [-0.1, 0.9]], dtype=torch.float64)
B = torch.tensor([[0.3], [1.0]], dtype=torch.float64)
SIGMA = 0.2


def _posterior(spec=LINEAR, act_dim=1):
    with seeded(0):
        model = build_latent_model(spec, act_dim)
        guide = AmortisedGuide(model.spec, act_dim)
    return LatentPosterior(model, guide, parse_inference_spec({"family": "mean_field"}))


def _linear_posterior():
    post = _posterior()
    with torch.no_grad():
        post.model.transition.weight.copy_(torch.cat([A, B], 1).float())
        post.model.transition.bias.copy_(torch.tensor([0.3, -0.2]))
        post.model.transition_scale_raw.fill_(inverse_softplus(SIGMA))
    return post


@pytest.mark.parametrize("horizon", [1, 3])
def test_linear_transition_gives_the_water_filling_capacity_at_every_state(horizon):
    """z' = A z + B a + b + σ ε: the K-step channel is linear with gain G_K = [A^{K−1}B … B] and noise
    covariance σ² Σ_j A^j A^jᵀ (``noise="step"``) or σ² I (``"final"``); its capacity under
    E‖a‖² ≤ P is water-filling, the same at every state. The tangent channel is exact here."""
    post = _linear_posterior()
    states = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    power = 0.7 * horizon
    step = linearised_empowerment(LatentModelChannel(post, -2.0, 2.0), states, horizon, power)
    exact_step = linear_gaussian_empowerment(LinearGaussianChannel(A, B, SIGMA), horizon, power)
    assert torch.allclose(step.double(), torch.full((5,), exact_step, dtype=torch.float64), rtol=1e-4)
    final = linearised_empowerment(LatentModelChannel(post, -2.0, 2.0, noise="final"), states, horizon, power)
    exact_final = water_filling(LinearGaussianChannel(A, B, SIGMA).gain(horizon), SIGMA ** 2, power)[0]
    assert torch.allclose(final.double(), torch.full((5,), exact_final, dtype=torch.float64), rtol=1e-4)
    declared = linearised_empowerment(LatentModelChannel(post, -2.0, 2.0, noise_std=0.5), states, horizon, power)
    exact_declared = linear_gaussian_empowerment(LinearGaussianChannel(A, B, 0.5), horizon, power)
    assert torch.allclose(declared.double(), torch.full((5,), exact_declared, dtype=torch.float64), rtol=1e-4)
    declared_final = linearised_empowerment(LatentModelChannel(post, -2.0, 2.0, noise="final", noise_std=0.5),
                                            states, horizon, power)
    exact_declared_final = water_filling(LinearGaussianChannel(A, B, SIGMA).gain(horizon), 0.25, power)[0]
    assert torch.allclose(declared_final.double(), torch.full((5,), exact_declared_final, dtype=torch.float64),
                          rtol=1e-4)
    if horizon > 1:  # accumulated noise is not white: the two noise placements differ
        assert abs(exact_step - exact_final) > 0.05


def test_action_repeat_holds_each_action():
    """K = 2 actions held 2 steps each is the 4-step channel whose gain sums the blocks of each pair."""
    post = _linear_posterior()
    lin = LinearGaussianChannel(A, B, SIGMA)
    G4 = lin.gain(4)
    G = torch.stack([G4[:, 0] + G4[:, 1], G4[:, 2] + G4[:, 3]], 1)
    white = torch.linalg.solve_triangular(torch.linalg.cholesky(lin.noise_cov(4)), G, upper=False)
    exact = water_filling(white, 1.0, 1.0)[0]
    value = linearised_empowerment(LatentModelChannel(post, -2.0, 2.0, action_repeat=2), torch.zeros(1, 2), 2, 1.0)
    assert float(value) == pytest.approx(exact, rel=1e-4)


def test_rollout_follows_the_models_own_transition_and_leaves_it_unchanged():
    """With zero noise the channel's K-step state is the model's mean rollout (LatentModel.rollout);
    with noise at every step, one draw of the model's transition per step; the posterior's model
    keeps its float32 parameters."""
    spec = {**LINEAR, "transition": {"type": "mlp", "hidden_sizes": [16]}}
    post = _posterior(spec)
    channel = LatentModelChannel(post, -2.0, 2.0)
    g = torch.Generator().manual_seed(1)
    z, a = torch.randn(4, 2, generator=g, dtype=torch.float64), torch.rand(4, 3, 1, generator=g, dtype=torch.float64)
    zero = channel.rollout(z, a, torch.zeros(4, *channel.noise_shape(3), dtype=torch.float64))
    mean = post.model.rollout(z.float(), a.float())[:, -1]
    assert torch.allclose(zero.float(), mean, atol=1e-5)
    eps = torch.randn(4, *channel.noise_shape(3), generator=g, dtype=torch.float64)
    x = z
    for j in range(3):
        loc, scale = channel.model.transition_loc_scale(x, a[:, j])
        x = loc + scale * eps[:, j]
    assert torch.allclose(channel.rollout(z, a, eps), x)
    assert next(post.model.parameters()).dtype == torch.float32


def test_the_variational_bound_runs_on_it_below_the_capacity():
    """The variational estimator (float32 codes) on the linear channel: a positive bound that stays
    below the water-filling capacity at the largest power a box [−2, 2] allows (E a² ≤ 4)."""
    from pprl import Empowerment

    post = _linear_posterior()
    channel = LatentModelChannel(post, -2.0, 2.0)
    states = torch.randn(64, 2, generator=torch.Generator().manual_seed(4))
    emp = Empowerment(channel, 1, states=states, seed=0)
    emp.fit(steps=150, progress=False)
    value = emp(states[:8])
    assert value.dtype == torch.float32
    cap = linear_gaussian_empowerment(LinearGaussianChannel(A, B, SIGMA), 1, 4.0)
    assert 0.3 * cap < float(value.mean()) < cap + 0.05, (float(value.mean()), cap)


def test_encode_reads_each_frame_alone():
    post = _posterior({**LINEAR, "guide": "filtering"})
    channel = LatentModelChannel(post, -2.0, 2.0)
    frames = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    z = channel.encode(frames, chunk=4)
    one = torch.cat([post.encode(frames[i:i + 1][None])[0][0] for i in range(6)])
    assert z.shape == (6, 2) and z.dtype == torch.float64 and torch.allclose(z.float(), one, atol=1e-6)


def test_bad_channels_are_refused():
    with pytest.raises(ValueError, match="transition.type 'none'"):
        LatentModelChannel(_posterior({**LINEAR, "transition": {"type": "none"}}), -1.0, 1.0)
    with pytest.raises(ValueError, match="act_dim >= 1"):
        LatentModelChannel(_posterior(act_dim=0), -1.0, 1.0)
    with pytest.raises(ValueError, match="noise must be one of"):
        LatentModelChannel(_linear_posterior(), -1.0, 1.0, noise="every")
    with pytest.raises(ValueError, match="noise_std must be > 0"):
        LatentModelChannel(_linear_posterior(), -1.0, 1.0, noise_std=0.0)
    with pytest.raises(ValueError, match="high > low"):
        LatentModelChannel(_linear_posterior(), 1.0, -1.0)
    assert math.isfinite(float(linearised_empowerment(LatentModelChannel(_linear_posterior(), -1.0, 1.0),
                                                      torch.zeros(1, 2), 1, 1.0)))
