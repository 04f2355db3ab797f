#!/usr/bin/env bash
# The Beyond-Normal benchmark (Czyż et al., NeurIPS 2023) as the PyPI package benchmark-mi needs
# its own environment: it breaks on the JAX that pprl uses. Usage:
#   bash benchmarks/mi_beyond_normal/setup_env.sh [VENV_DIR]      (default .venv-bmi)
set -euo pipefail
venv="${1:-.venv-bmi}"
python -m venv "$venv"
"$venv/bin/pip" install -q "benchmark-mi==0.1.3" "equinox==0.10.11" "jax==0.4.28" "jaxlib==0.4.28"
"$venv/bin/python" -c "from bmi.benchmark import BENCHMARK_TASKS; print(len(BENCHMARK_TASKS), 'tasks ready in $venv')"
