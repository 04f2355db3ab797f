#!/usr/bin/env bash
# Every GPU check and benchmark of issue 18 in one command, for a session lent a GPU machine.
#
# The GPU image has torch, JAX and NumPyro but not Pyro, gymnasium or ArviZ; they travel as
# wheels in .whl/ (ignored by git). On this (CPU) machine, once:
#     bash benchmarks/gpu_checks.sh --fetch-wheels
# then on the device, carrying .whl (about 6 minutes of device time, start included):
#     bash benchmarks/gpu_checks.sh
# Results land in $OUT (or ./gpu_out): the CUDA tests' log, and JSON + log of each benchmark.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
    plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${plat[@]}" -d .whl pyro-ppl==1.9.2 pyro-api==0.1.2 gymnasium==1.4.0 farama-notifications==0.0.4 \
        arviz==0.23.4 xarray-einstats==0.9.1 h5netcdf==1.8.2 platformdirs==4.5.1
    ls .whl
    exit 0
fi

out="${OUT:-gpu_out}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, pyro, pprl; print(torch.__version__, pyro.__version__, torch.cuda.get_device_name())" | tee -a "$out/gpu.txt"

# 1. the CUDA tests (they skip on CPU machines, so CI never runs them)
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/inference/test_svi.py tests/inference/test_fit_many.py \
    tests/inference/test_compile.py tests/rl/test_train.py -k "cuda" 2>&1 | tee "$out/cuda_tests.log"

# 2. ms per SVI step, before (a host read every step) and after (the deferred guard), batch 256 and 4096
for batch in 256 4096; do
    timeout 180 python3 benchmarks/svi_step.py --device cuda --batch-size "$batch" --rounds 10 --skip flow pyro \
        --json "$out/svi_cuda_b$batch.json" 2>&1 | tail -20 | tee "$out/svi_cuda_b$batch.log"
done
timeout 120 python3 benchmarks/svi_step.py --device cpu --threads 0 --rounds 10 --skip full_rank flow pyro \
    --json "$out/svi_cpu16.json" 2>&1 | tail -20 | tee "$out/svi_cpu16.log"

# 3. R = 1, 8, 64 fits at once
timeout 180 python3 benchmarks/fit_many.py --device cuda --runs 1 8 64 --json "$out/fit_many_cuda.json" 2>&1 \
    | tee "$out/fit_many_cuda.log"

# 4. env steps/s of PPO + VIME under each device placement (16,384 env steps each)
for placement in cpu cuda learner=cpu,intrinsic=cuda; do
    timeout 150 python3 -m pprl.cli train examples/vime_mountaincar.yaml --steps 16384 --quiet \
        --device "$placement" -o "/tmp/vime_$placement" 2>&1 | tail -3
    python3 -c "import json,sys; s=json.load(open('/tmp/vime_$placement/summary.json')); print('$placement', {k: v for k, v in s.items() if 'per_s' in k or 'wall' in k})" \
        | tee -a "$out/placements.txt"
done
