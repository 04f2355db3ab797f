#!/usr/bin/env bash
# Create (or refresh) an isolated virtual environment holding torch-mist 0.2.17,
# the peer library used by benchmarks/torch_mist_staircase.py.
#
#   bash benchmarks/setup_torch_mist.sh [VENV_DIR]
#
# VENV_DIR defaults to benchmarks/.venv-torch-mist (relative to the repo root).
# Safe to run repeatedly: an existing venv is reused and pip skips whatever is
# already satisfied. The last line printed is the venv's python.
#
# Why the install is split in two:
#   * torch-mist 0.2.17 declares hydra-core, mpld3, numpy<2, pyro-ppl,
#     scikit-learn and torch>=2,<3. hydra-core and mpld3 are never imported by
#     the package, so torch-mist itself goes in with --no-deps and only the
#     dependencies it really imports are installed explicitly.
#   * It imports pandas (torch_mist.utils.data) without declaring it, and needs
#     numpy < 2 (it is built against the 1.x API).
#   * torch is pinned to the CPU build 2.13.0 (inside torch-mist's torch<3 range).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${1:-$REPO_ROOT/benchmarks/.venv-torch-mist}"
PYTHON_BIN="${PYTHON:-python3}"

TORCH_SPEC="torch==2.13.0"
TORCH_MIST_SPEC="torch-mist==0.2.17"
# Runtime dependencies torch-mist actually imports (see note above).
DEPS=("numpy<2" "pandas" "pyro-ppl>=1.8.5,<2" "scikit-learn>=1.3,<2" "tqdm")

if [ ! -x "$VENV_DIR/bin/python" ]; then
    echo "[setup_torch_mist] creating venv at $VENV_DIR" >&2
    "$PYTHON_BIN" -m venv "$VENV_DIR"
else
    echo "[setup_torch_mist] reusing venv at $VENV_DIR" >&2
fi
VPY="$VENV_DIR/bin/python"

pip_install() {
    "$VPY" -m pip install --disable-pip-version-check -q "$@" >&2
}

# Already complete? Then do nothing (keeps re-runs fast and offline-safe).
if "$VPY" - <<'EOF' 2>/dev/null
import importlib.metadata as md, sys
import numpy
want = {"torch": "2.13.0", "torch-mist": "0.2.17"}
ok = all(md.version(k).split("+")[0] == v for k, v in want.items())
ok = ok and int(numpy.__version__.split(".")[0]) < 2
import pandas, pyro, sklearn, torch_mist.estimators  # noqa: F401
sys.exit(0 if ok else 1)
EOF
then
    echo "[setup_torch_mist] already complete" >&2
else
    # torch first, so that nothing later pulls in a different (CUDA) build.
    pip_install "$TORCH_SPEC"
    pip_install "${DEPS[@]}" "$TORCH_SPEC"
    pip_install --no-deps "$TORCH_MIST_SPEC"
    # Import check: fails loudly if a dependency is still missing.
    "$VPY" -c "import torch, numpy, torch_mist, torch_mist.estimators; \
print('[setup_torch_mist] torch', torch.__version__, '| numpy', numpy.__version__, \
'| torch_mist', torch_mist.__version__)" >&2
fi

# Absolute path of the venv python, for callers to capture.
cd "$(dirname "$VPY")" && echo "$(pwd)/python"
