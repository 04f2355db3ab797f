"""VIME from pixels: frames encoded by a latent model fitted once and frozen, VIME's information gain
about a BNN of z' given (z, a), resumable, and reachable from an experiment spec."""
import copy
import io

import pytest
import torch

import pprl
import pprl.inference.latent_fit as latent_fit
from pprl.data.frames import collect_frames
from pprl.rl.experiment import load_experiment
from pprl.rl.intrinsic import VIME
from pprl.spec import SpecError

pytestmark = pytest.mark.filterwarnings("ignore::pprl.rl.intrinsic.VIMEHealthWarning")  # tiny fits

SIZE = 8  # 8×8 frames, two stacked: [2, 8, 8] = 128 numbers per observation
TINY_LATENT = {"name": "tiny_mc_pixels", "type": "latent", "observation": {"kind": "image", "shape": [2, SIZE, SIZE]},
               "latent_size": 3, "encoder": {"type": "conv", "features": 16}, "decoder": {"type": "conv"},
               "transition": {"type": "mlp", "hidden_sizes": [16]}, "likelihood": {"type": "bernoulli"},
               "guide": "per_step", "sequence_length": 4}
TINY = {"name": "tiny_vime_pixels", "env": "pprl/SparseMountainCarPixels-v0",
        "env_kwargs": {"size": SIZE, "frames": 2},
        "learner": {"num_envs": 2, "num_steps": 64, "total_steps": 256, "num_minibatches": 2, "update_epochs": 2},
        "intrinsic": {"type": "vime", "model": "bnn_dynamics", "family": "mean_field", "eta": 0.1,
                      "fit_steps": 5, "initial_fit_steps": 20, "num_samples": 2,
                      "encoder": {"model": TINY_LATENT, "fit_steps": 10, "batch_size": 4}}}


def spec_with(**encoder) -> dict:
    out = copy.deepcopy(TINY)
    out["intrinsic"]["encoder"].update(encoder)
    return out


@pytest.fixture(scope="module")
def frames():
    """256 random-policy transitions of two envs, time-major, frames flattened to 128 numbers."""
    data = collect_frames("pprl/SparseMountainCarPixels-v0", 256, seed=0, frames=2, num_envs=2,
                          render={"size": SIZE}).transitions()
    assert data.obs.shape == (256, 2 * SIZE * SIZE)
    return data


def make_vime(**encoder) -> VIME:
    return VIME(load_experiment(spec_with(**encoder)).intrinsic, 2 * SIZE * SIZE, 1, seed=0)


def test_encoder_is_fitted_once_on_the_first_frames_and_then_frozen(frames, monkeypatch):
    fits = []
    real = latent_fit.fit_latent
    monkeypatch.setattr(latent_fit, "fit_latent", lambda *a, **k: fits.append(len(a[2])) or real(*a, **k))
    vime = make_vime(frames_to_fit=200)  # more than the first batch: the fit waits for the second
    first = vime.reward(frames[:128])
    assert torch.equal(first, torch.zeros(128)) and not vime.encoder.fitted and vime.info_gain is None
    assert vime.update(frames[:128]) == {} and vime.pool.size == 0
    vime.reward(frames[128:])
    assert fits == [256]  # one fit, on both batches' frames
    posterior = vime.encoder.posterior
    params = {k: v.clone() for k, v in {**posterior.model.state_dict(), **posterior.guide.state_dict()}.items()}
    assert not any(p.requires_grad for p in [*posterior.model.parameters(), *posterior.guide.parameters()])
    for part in (frames[128:], frames[:128], frames[64:192]):
        vime.update(part)
        vime.reward(part)
    assert fits == [256] and vime.encoder.posterior is posterior  # never refitted
    now = {**posterior.model.state_dict(), **posterior.guide.state_dict()}
    assert all(torch.equal(params[k], now[k]) for k in params)  # frozen: VIME's refits leave it alone


def test_info_gain_is_finite_and_about_the_latent_transition(frames):
    vime = make_vime()
    reward = vime.reward(frames[:128])
    assert reward.shape == (128,) and torch.isfinite(reward).all() and (reward >= 0).all()
    assert reward.median() == pytest.approx(1.0, rel=1e-5)  # VIME's median normalisation, on the codes
    assert vime.obs_dim == 3 and vime.info_gain.posterior.model.obs_dim == 3  # BNN of z' given (z, a)
    vime.update(frames[:128])
    pool = vime.pool.contents()
    assert pool.obs.shape == (128, 3) and pool.next_obs.shape == (128, 3)
    z, _ = vime.encoder.posterior.encode(frames.obs[:128])
    torch.testing.assert_close(pool.obs, z)  # the codes are the encoder's means
    gain = vime.info_gain(pool)
    assert gain.shape == (128,) and torch.isfinite(gain).all()
    assert torch.isfinite(vime.reward(frames[128:])).all()


def test_history_gives_the_codes_of_the_last_windows(monkeypatch):
    """history 2 on three stacked frames: the state is (code of frames 0–1, code of frames 1–2), and
    the latent model is fitted on the newest window (frames 1–2) of each observation."""
    data = collect_frames("pprl/SparseMountainCarPixels-v0", 128, seed=1, frames=3, num_envs=2,
                          render={"size": SIZE}).transitions()
    fitted = []
    real = latent_fit.fit_latent
    monkeypatch.setattr(latent_fit, "fit_latent", lambda *a, **k: fitted.append(a[2]) or real(*a, **k))
    spec = spec_with(history=2)
    spec["env_kwargs"]["frames"] = 3
    vime = VIME(load_experiment(spec).intrinsic, 3 * SIZE * SIZE, 1, seed=0)
    reward = vime.reward(data)
    assert vime.obs_dim == 6 and vime.info_gain.posterior.model.obs_dim == 6 and torch.isfinite(reward).all()
    frame = SIZE * SIZE
    torch.testing.assert_close(fitted[0].obs, data.obs[:, frame:])
    torch.testing.assert_close(fitted[0].next_obs, data.next_obs[:, frame:])
    codes = vime.encoder.encode(data.obs)
    posterior = vime.encoder.posterior
    torch.testing.assert_close(codes[:, :3], posterior.encode(data.obs[:, :2 * frame])[0])
    torch.testing.assert_close(codes[:, 3:], posterior.encode(data.obs[:, frame:])[0])
    with pytest.raises(SpecError, match=r"history 2 needs 1 more channel\(s\), 192 numbers in all, the environment "
                                        r"gives 128.*frames: 3"):
        VIME(load_experiment(spec_with(history=2)).intrinsic, 2 * SIZE * SIZE, 1)
    with pytest.raises(SpecError, match=r"intrinsic.encoder.history"):
        load_experiment(spec_with(history=0))


def test_spec_errors_name_the_field(tmp_path):
    filtering = {**TINY_LATENT, "guide": "filtering"}
    with pytest.raises(SpecError, match=r"intrinsic.encoder.model.*guide must be per_step"):
        load_experiment(spec_with(model=filtering))
    with pytest.raises(SpecError, match=r"intrinsic.encoder.model.*needs a type: latent model"):
        load_experiment(spec_with(model="bnn_dynamics"))
    with pytest.raises(SpecError, match=r"intrinsic.encoder.*frames_to_fits"):
        load_experiment(spec_with(frames_to_fits=3))
    bad = copy.deepcopy(TINY)
    del bad["intrinsic"]["encoder"]["model"]
    with pytest.raises(SpecError, match=r"intrinsic.encoder.model' is required"):
        load_experiment(bad)
    with pytest.raises(SpecError, match=r"intrinsic.encoder.fit_steps"):
        load_experiment(spec_with(fit_steps=0))
    one_frame = {**TINY_LATENT, "observation": {"kind": "image", "shape": [1, SIZE, SIZE]}}
    spec = load_experiment(spec_with(model=one_frame)).intrinsic
    with pytest.raises(SpecError, match=r"shape \[1, 8, 8\] \(64 numbers\), the environment gives 128"):
        VIME(spec, 2 * SIZE * SIZE, 1)
    with pytest.raises(SpecError, match=r"shape \[1, 8, 8\]"):  # through the experiment: the env has 2 frames
        pprl.train(spec_with(model=one_frame), progress=False, out_dir=tmp_path)


def roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("frames_to_fit", [0, 200])  # resumed after the fit / while frames wait for it
def test_resume_gives_the_same_rewards(frames, frames_to_fit):
    run = make_vime(frames_to_fit=frames_to_fit)
    run.reward(frames[:128])
    run.update(frames[:128])
    resumed = make_vime(frames_to_fit=frames_to_fit)
    resumed.load_state_dict(roundtrip(run.state_dict()))
    assert resumed.encoder.fitted == run.encoder.fitted == (frames_to_fit == 0)
    for part in (frames[128:], frames[64:192]):
        expected = run.reward(part)
        torch.testing.assert_close(resumed.reward(part), expected, rtol=0, atol=0)
        assert torch.isfinite(expected).all() and expected.abs().sum() > 0
        run.update(part), resumed.update(part)


def test_train_runs_the_pixel_example(tmp_path):
    """The shipped example, shrunk (2 envs × 64 steps, 5 encoder steps), runs, records VIME's
    health and resumes with the encoder it fitted."""
    spec = load_experiment("vime_mountaincar_pixels").to_dict()
    spec["learner"].update(num_envs=2, num_steps=64, total_steps=256, num_minibatches=2, update_epochs=1)
    spec["intrinsic"].update(fit_steps=3, initial_fit_steps=10, num_samples=2)
    spec["intrinsic"]["encoder"].update(fit_steps=3, batch_size=2, frames_to_fit=0)
    summary = pprl.train(spec, seed=0, out_dir=tmp_path, progress=False)
    assert summary["env_steps"] == 256 and summary["final_info_gain"] is not None
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    encoder = ckpt["intrinsic"]["encoder"]["posterior"]
    assert encoder["model_spec"]["name"] == "latent_mountaincar_pixels" and encoder["model_spec"]["latent_size"] == 4
    summary = pprl.train(None, out_dir=tmp_path, resume=True, total_steps=384, progress=False)
    assert summary["env_steps"] == 384
    again = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["intrinsic"]["encoder"]["posterior"]
    assert all(torch.equal(encoder["guide_state"][k], again["guide_state"][k]) for k in encoder["guide_state"])


def latent_spec(**intrinsic) -> dict:
    """``model: latent``: VIME's dynamics model is the encoder's own Bayesian transition."""
    out = spec_with(model={**TINY_LATENT, "transition": {"type": "mlp", "hidden_sizes": [16], "bayesian": True}})
    out["intrinsic"].update(model="latent", **intrinsic)
    return out


def test_model_latent_starts_from_the_latent_models_q_theta_and_resumes(frames):
    """VIME's posterior is the latent model's q(θ) (same μ, σ, transition function and noise), with no
    separate first fit; its refit (of q(θ) and the noise scale) and a resumed run continue from it."""
    vime = VIME(load_experiment(latent_spec()).intrinsic, 2 * SIZE * SIZE, 1, seed=0)
    reward = vime.reward(frames[:128])
    assert torch.isfinite(reward).all() and (reward >= 0).all() and vime.fits == 0
    latent = vime.encoder.posterior
    q = vime.info_gain.posterior.q
    torch.testing.assert_close(q.loc, latent.transition_weights())
    torch.testing.assert_close(q.scale, latent.guide.weights_scale)
    z, _ = latent.encode(frames.obs[:5])
    loc, scale = latent.model.transition_loc_scale(z, frames.act[:5], latent.transition_weights())
    f = vime.info_gain.posterior.model.mean(q.loc[None], torch.cat([z, frames.act[:5]], -1))[0]
    torch.testing.assert_close(z + f, loc)
    torch.testing.assert_close(vime.info_gain.posterior.model.noise_scale, scale[0])
    vime.update(frames[:128])
    assert not torch.equal(vime.info_gain.posterior.q.loc, latent.transition_weights())  # refitted on the pool,
    assert not torch.equal(vime.info_gain.posterior.model.noise_scale, scale[0])  # the noise scale with it
    resumed = VIME(load_experiment(latent_spec()).intrinsic, 2 * SIZE * SIZE, 1, seed=0)
    resumed.load_state_dict(roundtrip(vime.state_dict()))
    torch.testing.assert_close(resumed.reward(frames[128:]), vime.reward(frames[128:]), rtol=0, atol=0)


def test_model_latent_spec_errors():
    with pytest.raises(SpecError, match=r"intrinsic.model.*Bayesian transition weights.*transition.bayesian: true"):
        load_experiment({**spec_with(), "intrinsic": {**spec_with()["intrinsic"], "model": "latent"}})
    with pytest.raises(SpecError, match=r"intrinsic.encoder.history.*needs history 1"):
        load_experiment(latent_spec(encoder={**latent_spec()["intrinsic"]["encoder"], "history": 2}))
    with pytest.raises(SpecError, match=r"intrinsic.family.*allowed: mean_field"):
        load_experiment(latent_spec(family="full_rank", method="update"))
    no_encoder = latent_spec()
    del no_encoder["intrinsic"]["encoder"]
    with pytest.raises(SpecError, match=r"intrinsic.model.*add intrinsic.encoder"):
        load_experiment(no_encoder)
    assert load_experiment(load_experiment(latent_spec()).to_dict()).intrinsic.model is None  # round trip
