"""No public pprl call changes global state: the random state (torch CPU and CUDA, numpy,
random), Pyro's settings or its param store; sampling methods give the same draws whatever ran
before them."""
import random

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

import pprl
from pprl.empowerment import GridWorld, LatentGaussianChannel
from pprl.empowerment.continuous import PosteriorChannel, linearised_empowerment
from pprl.inference.barber_agakov import barber_agakov
from pprl.inference.info_gain import InfoGain
from pprl.inference.svi import elbo_per_transition
from tests.conftest import linear_system

pytestmark = pytest.mark.usefixtures("single_thread")

TINY_TRAIN = {"env": "pprl/SparseMountainCar-v0",
              "learner": {"num_envs": 2, "num_steps": 32, "total_steps": 64, "num_minibatches": 2, "update_epochs": 1},
              "intrinsic": {"type": "vime", "model": "bnn_dynamics_student_t", "family": "mean_field", "eta": 0.1,
                            "fit_steps": 2, "initial_fit_steps": 5, "num_samples": 2}}
SMALL_BNN = {"type": "bnn", "hidden_sizes": [8]}


def rng_states():
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()[1].copy(), "random": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def assert_untouched(call):
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    before = rng_states()
    call()
    after = rng_states()
    assert torch.equal(before["torch"], after["torch"]), "torch CPU RNG changed"
    assert np.array_equal(before["numpy"], after["numpy"]), "numpy RNG changed"
    assert before["random"] == after["random"], "random RNG changed"
    if "cuda" in before:
        assert all(torch.equal(a, b) for a, b in zip(before["cuda"], after["cuda"])), "CUDA RNG changed"


@pytest.fixture(scope="module")
def fitted():
    data = linear_system(200, seed=0)
    return pprl.fit(SMALL_BNN, "mean_field", data, steps=20, seed=0, progress=False), data


def channel():
    x = pyro.sample("x", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    return pyro.sample("y", dist.Normal(0.8 * x, 0.6).to_event(1))


def decoder(y):
    w = pyro.param("w_iso", torch.tensor(0.0))
    pyro.sample("x", dist.Normal(w * y, 1.0).to_event(1))


def _latent_nuts_gap():
    from pprl.data.sequences import to_sequences
    from pprl.inference.mcmc.latent_nuts import latent_nuts, local_posterior_gap

    data = pprl.collect("Pendulum-v1", 40, seed=0)
    post = pprl.fit("latent_vector", "mean_field", data, steps=2, seed=0, progress=False)
    seqs = to_sequences(data, 3)[:2]
    draws = latent_nuts(post, seqs, num_samples=5, num_warmup=5, num_chains=1, progress=False)
    return local_posterior_gap(post, seqs, draws, num_samples=10)


CALLS = {
    "fit": lambda post, data: pprl.fit(SMALL_BNN, "mean_field", data, steps=5, seed=1, progress=False),
    "fit flow": lambda post, data: pprl.fit(SMALL_BNN, "flow", data, steps=3, seed=1, progress=False),
    "compare": lambda post, data: pprl.compare(SMALL_BNN, ["mean_field", "map"], data[:150], data[150:], steps=3,
                                               progress=False),
    "Posterior.sample": lambda post, data: post.sample(5),
    "Posterior.predict": lambda post, data: post.predict(data.obs[:4], data.act[:4]),
    "Posterior.log_predictive": lambda post, data: post.log_predictive(data),
    "Posterior.prior_log_predictive": lambda post, data: post.prior_log_predictive(data),
    "Posterior.mean_theta": lambda post, data: post.mean_theta(),
    "elbo_per_transition": lambda post, data: elbo_per_transition(post, data),
    "InfoGain": lambda post, data: InfoGain(post, "second_order", num_samples=2)(data[:8]),
    "InfoGain.update": lambda post, data: InfoGain(post, "update", steps=1).update(data, steps=2),
    "estimate_mi": lambda post, data: pprl.estimate_mi(torch.randn(300, 1, generator=torch.Generator().manual_seed(0)),
                                                       torch.randn(300, 1, generator=torch.Generator().manual_seed(1)),
                                                       steps=3, batch_size=32, progress=False),
    "barber_agakov": lambda post, data: barber_agakov(channel, decoder, "x", "y", num_samples=64, steps=2,
                                                      progress=False),
    "collect": lambda post, data: pprl.collect("Pendulum-v1", 16, seed=0),
    "load_posterior": lambda post, data: pprl.inference.posterior.posterior_from_state(post.state()),
    "load_posterior flow": lambda post, data: pprl.inference.posterior.posterior_from_state(
        pprl.fit(SMALL_BNN, "flow", data, steps=2, seed=1, progress=False).state()),
    "Empowerment continuous": lambda post, data: pprl.Empowerment(
        PosteriorChannel(post, [-1.0], [1.0], theta="sample"), 1, states=data.obs[:32]).fit(3, progress=False)(
        data.obs[:4], num_samples=8),
    "linearised_empowerment": lambda post, data: linearised_empowerment(PosteriorChannel(post, [-1.0], [1.0]),
                                                                        data.obs[:4], 2, 1.0),
    "Empowerment pixels": lambda post, data: pprl.Empowerment(GridWorld(["..."]), 1, observe=GridWorld(["..."]).render,
                                                              encoder="conv").fit(2, progress=False)([0, 1]),
    "LatentGaussianChannel": lambda post, data: LatentGaussianChannel(data.obs_dim, data.act_dim, 1).fit(
        data, steps=3, progress=False).empowerment(data.obs[:4], 1.0),
    "nuts": lambda post, data: pprl.nuts({"type": "linear_gaussian"}, data[:50], num_samples=5, num_warmup=5,
                                         num_chains=1, progress=False),
    "latent_nuts": lambda post, data: _latent_nuts_gap(),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_public_call_leaves_the_global_rng_alone(fitted, name):
    post, data = fitted
    assert_untouched(lambda: CALLS[name](post, data))


def test_train_leaves_the_global_rng_alone(tmp_path):
    assert_untouched(lambda: pprl.train(TINY_TRAIN, seed=0, out_dir=tmp_path / "run", progress=False))


def test_sampling_is_seeded_not_order_dependent(fitted):
    post, data = fitted
    a = post.log_predictive(data)
    torch.rand(100)  # the caller's own randomness in between
    assert post.log_predictive(data) == a
    assert post.log_predictive(data, seed=1) != a  # a different seed gives different draws
    torch.testing.assert_close(post.sample(3)["theta"], post.sample(3)["theta"])


def test_compare_gives_the_same_table_in_any_order():
    data = linear_system(200, seed=0)
    kw = dict(steps=5, progress=False)
    ab = pprl.compare(SMALL_BNN, ["mean_field", "low_rank"], data[:150], data[150:], **kw)
    ba = pprl.compare(SMALL_BNN, ["low_rank", "mean_field"], data[:150], data[150:], **kw)
    cols = ["elbo", "train_log_pred", "test_log_pred", "prior_log_pred"]
    assert ab.loc[["mean_field", "low_rank"], cols].equals(ba.loc[["mean_field", "low_rank"], cols])


def test_import_changes_no_pyro_setting_and_fits_leave_the_param_store_empty(fitted):
    import subprocess
    import sys

    code = ("import pyro; before = pyro.settings.get('module_local_params'); import pprl; "
            "assert pyro.settings.get('module_local_params') == before == False")
    subprocess.run([sys.executable, "-c", code], check=True)
    pyro.clear_param_store()
    post, data = fitted
    for family in ("mean_field", "low_rank", "flow", "laplace"):
        other = pprl.fit(SMALL_BNN, family, data, steps=3, seed=0, progress=False)
        other.log_predictive(data)
    loaded = pprl.inference.posterior.posterior_from_state(post.state())
    torch.testing.assert_close(loaded.mean_theta(), post.mean_theta())
    assert list(pyro.get_param_store().keys()) == []  # guides keep their parameters to themselves
    assert pyro.settings.get("module_local_params") is False
