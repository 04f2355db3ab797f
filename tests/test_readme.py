"""Every code block of README.md runs as written, with smaller budgets, so the README cannot rot.

Python blocks run in one namespace (later blocks may use earlier names, as a reader would), in a
temporary directory; shell blocks run line by line through bash in a directory that holds the
repository's ``models/``, ``inference/`` and ``examples/``. Each budget substitution must match
the README: a changed README fails here until this table is updated."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()

# README text -> the test's budget (every key must occur in some block).
SMALL_BNN = '{"type": "bnn", "hidden_sizes": [16]}'  # the README's 2×64 BNN costs D³ in Laplace's step
PYTHON_BUDGETS = {
    '"bnn_dynamics"': SMALL_BNN,
    'pprl.collect("Pendulum-v1", 6000': 'pprl.collect("Pendulum-v1", 1500',
    "steps=2000": "steps=30",
    "total_steps=200_000": "total_steps=2_048",
    '"pprl/SparseMountainCar-v0", 8192': '"pprl/SparseMountainCar-v0", 2048',
    "data[:4096]": "data[:1024]",
    "data[4096:]": "data[1024:]",
    "steps=500, seed=0)\nig": "steps=50, seed=0)\nig",
    "ig.update(data, steps=300)": "ig.update(data, steps=30)",
    "steps=4000, batch_size=128": "steps=60, batch_size=128",
    "10_000": "2_000",
    "num_samples=4096, steps=500": "num_samples=512, steps=30",
    "pprl.collect(\"Pendulum-v1\", 1000": "pprl.collect(\"Pendulum-v1\", 300",
    "est.fit(steps=600)": "est.fit(steps=30, progress=False)",
    "num_samples=1000, num_warmup=1000, num_chains=4": "num_samples=100, num_warmup=100, num_chains=2",
    'nuts="nuts", out_dir': 'nuts={"family": "nuts", "options": {"num_samples": 100, "num_warmup": 100, '
                            '"num_chains": 2}}, steps=300, num_samples=100, out_dir',
}
SHELL_BUDGETS = {
    "models/bnn_dynamics.yaml": "small_bnn.yaml",
    "--steps 6000": "--steps 800",
    "-o runs/mf": "-o runs/mf --steps 30",
    "-o runs/cmp": "-o runs/cmp --steps 30",
    "--seed 1 -o runs/vime_mc": "--seed 1 -o runs/vime_mc --steps 2048",
    "--seed 1 -o runs/ppo_mc": "--seed 1 -o runs/ppo_mc --steps 2048",
    "--resume runs/vime_mc --steps 300000": "--resume runs/vime_mc --steps 4096",
    "size=(10000, 2)": "size=(2000, 2)",
    "--json mi.json": "--json mi.json --steps 60",
    "-o runs/nuts": "-o runs/nuts --num-samples 100 --num-warmup 100 --num-chains 2",
    "-o runs/walled_room": "-o runs/walled_room --steps 1600",
    "--horizon 4 -o runs/emp_pendulum": "--horizon 2 -o runs/emp_pendulum --fit-steps 20 --num-samples 16",
    "-o runs/pendulum_empowerment": "-o runs/pendulum_empowerment --steps 4096",
    "-o runs/driml_minigrid": "-o runs/driml_minigrid --steps 4096",
    "--seeds 0-4 --set learner.learning_rate=3e-4,1e-3 -o runs/sweep_lr":
        "--seeds 0-1 --set learner.learning_rate=3e-4,1e-3 -o runs/sweep_lr --steps 1024 --jobs 1",
    "--size 20000 --sac-steps 30000": "--size 400 --sac-steps 1600 --snapshots 4 --quiet",
    "-o runs/misa_pendulum": "-o runs/misa_pendulum --updates 10 --quiet",
    "--horizon 2 -o runs/emp_room": "--horizon 1 -o runs/emp_room --fit-steps 30 --quiet",
    "--nuts --data data.npz -o runs/report": "--nuts small_nuts.yaml --data data.npz -o runs/report --steps 30",
}


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def with_budgets(code: str, budgets: dict, used: set) -> str:
    for text, small in budgets.items():
        if text in code:
            code = code.replace(text, small)
            used.add(text)
    return code


def test_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    used: set = set()
    namespace = {"__name__": "__readme__"}
    for i, code in enumerate(blocks("python")):
        exec(compile(with_budgets(code, PYTHON_BUDGETS, used), f"README.md python block {i}", "exec"), namespace)
    assert used == set(PYTHON_BUDGETS), f"budget substitutions that no longer match README: {set(PYTHON_BUDGETS) - used}"
    assert (tmp_path / "runs" / "mf.pt").is_file() and (tmp_path / "my_data.npz").is_file()
    assert (tmp_path / "runs" / "vime_mc_py" / "summary.json").is_file()


def expand(line: str, cwd: Path) -> list[str]:
    """The argv bash would build from ``line`` (quotes, globs and braces expanded)."""
    done = subprocess.run(["bash", "-c", f"printf '%s\\0' {line}"], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.split("\0")[:-1]


def test_shell_blocks_run(tmp_path, monkeypatch, capsys):
    """``pprl ...`` lines run in-process through the CLI's ``main`` (bash expands the arguments);
    other lines (``python -c ...``) run through bash."""
    from pprl.cli import main

    monkeypatch.chdir(tmp_path)
    for folder in ("models", "inference", "examples"):
        (tmp_path / folder).symlink_to(REPO / folder)
    (tmp_path / "small_bnn.yaml").write_text("type: bnn\nhidden_sizes: [16]\n")
    (tmp_path / "small_nuts.yaml").write_text("family: nuts\noptions: {num_samples: 100, num_warmup: 100, num_chains: 2}\n")
    used: set = set()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ran = 0
    for code in blocks("bash"):
        for line in code.splitlines():
            line = line.split("  #")[0].strip()
            if not line or line.startswith("pip ") or "&& pprl demo" in line or line.startswith("pip"):
                continue  # set-up lines; the demo has its own test
            if line.startswith("python -c") and "torch.cuda" in line:
                continue  # the GPU check
            if "pprl" not in line and not line.startswith("python"):
                continue
            command = with_budgets(line, SHELL_BUDGETS, used)
            if command.startswith("pprl "):
                code = main(expand(command[len("pprl "):], tmp_path))
                assert code == 0, f"{line}\n{capsys.readouterr()}"
            else:
                done = subprocess.run(["bash", "-c", command.replace("python ", f"{sys.executable} ", 1)],
                                      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
                assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            ran += 1
    assert used == set(SHELL_BUDGETS), f"budget substitutions that no longer match README: {set(SHELL_BUDGETS) - used}"
    assert ran >= 14  # every command line of the CLI blocks (set-up lines excepted)
    assert (tmp_path / "runs" / "cmp" / "comparison.csv").is_file() and (tmp_path / "mi.json").is_file()
