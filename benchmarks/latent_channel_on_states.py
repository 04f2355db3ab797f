"""Control for benchmarks/pixel_empowerment.py: the same latent linear-Gaussian channel fitted on
the pendulum's true states (identity embedding of (cos θ, sin θ, θ̇)) instead of a pixel encoder's z,
same frames, same held-out envs, against the simulator's linearised empowerment.

    OMP_NUM_THREADS=1 python benchmarks/latent_channel_on_states.py
"""
import torch, math
from pprl.data import collect_frames
from pprl.empowerment import LatentGaussianChannel, PendulumChannel, linearised_empowerment
torch.set_num_threads(1)
fr = collect_frames("pprl/PendulumPixels-v0", 16000, seed=0, frames=1, num_envs=8)
st = fr.state_transitions()
env = torch.arange(len(fr)) % 8
fit, held = env < 6, env >= 6
from pprl.data import Transitions
tr = Transitions(obs=st.obs[fit], act=st.act[fit], next_obs=st.next_obs[fit], terminated=st.terminated[fit], truncated=st.truncated[fit], meta={"num_envs": 6})
for K in (1, 5, 10):
    ch = LatentGaussianChannel(3, 1, K, seed=0).fit(tr, steps=1500, progress=False)
    P = K * 16 / 12
    e = ch.empowerment(st.obs[held], P).double()
    ref = linearised_empowerment(PendulumChannel(0.05, "final", 1), st.obs[held], K, P).double()
    r = lambda x: x.argsort().argsort().double()
    th = torch.atan2(st.obs[held][:,1], st.obs[held][:,0])
    up, down = th.abs() < 0.5, th.abs() > 2.6
    print(K, 'spearman', round(float(torch.corrcoef(torch.stack([r(e), r(ref)]))[0,1]),3), 'state-LG up/down', round(float(e[up].mean()),2), round(float(e[down].mean()),2), 'sim', round(float(ref[up].mean()),2), round(float(ref[down].mean()),2), flush=True)
