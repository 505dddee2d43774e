"""benchmarks/gpu_check.sh is ready to run: its steps parse, and its Python steps run on CPU."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "gpu_check.sh")


def test_dry_run_lists_every_step_and_runs_nothing():
    process = subprocess.run(
        ["bash", SCRIPT, "--dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=120,
    )
    assert process.returncode == 0, process.stderr
    steps = [line.split("]")[0][1:] for line in process.stdout.splitlines()
             if line.startswith("[")]  # fmt: skip
    assert steps == [
        "1-rtf", "2-cache", "corpus", "3-recipe", "4-torchrun",
        "4-cuda-paths", "5-export", "5-predict",
    ]  # fmt: skip
    assert "--device cuda:0 --precision bf16" in process.stdout
    assert "--distributed_backend nccl" in process.stdout
    assert "hparams/hubert_ecapa.yaml" in process.stdout


def test_a_bad_option_is_refused():
    process = subprocess.run(
        ["bash", SCRIPT, "--gpu"], cwd=REPO, capture_output=True, text=True
    )
    assert process.returncode == 2 and "usage" in process.stderr


def test_the_rtf_step_and_the_table_run_on_cpu(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": REPO,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    helper = os.path.join(REPO, "benchmarks", "gpu_check.py")
    subprocess.run(
        [sys.executable, helper, "rtf", "--device", "cpu", "--smoke",
         "--out", str(results / "1-rtf.json")],
        check=True, env=env, timeout=300, cwd=REPO,
    )  # fmt: skip
    rows = json.loads((results / "1-rtf.json").read_text())
    assert [row[0].split("-shaped")[0] for row in rows] == [
        "RTF HuBERT-Large",
        "RTF WavLM-Large",
    ]
    assert all(float(row[1]) > 0 for row in rows)
    table = subprocess.run(
        [sys.executable, helper, "table", "--results", str(results)],
        check=True, env=env, capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert "| check" in table.stdout and "capability" in table.stdout
