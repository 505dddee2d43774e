"""A run is either right or stops loudly: the guards of the recipes' start-up
and of their checkpoints (issue 11.2-11.12, issue 16.3 and 16.6).

Unit tests on the helpers (:mod:`emoshare_sb.training.run_guards`,
:mod:`emoshare_sb.training.checkpoints`, :mod:`emoshare_sb.training.progress`,
:mod:`emoshare_sb.utils.io`), then recipe-level tests on the ComParE
``fbank_ecapa`` row (the fastest: no SSL encoder, about 10 s a run). One
finished run is shared by the tests that only read it; the test that changes
it comes last. Start-up failures stop before any model is loaded, in a few
seconds.

Authors
 * emoshare_sb contributors 2026
"""

import csv
import json
import math
import os
import shlex
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer

from emoshare_sb.training.brain import EmotionBrain
from emoshare_sb.training.checkpoints import (
    AtomicCheckpointer,
    NonFiniteCheckpointError,
)
from emoshare_sb.training.progress import labelled_tqdm, set_label
from emoshare_sb.training.run_checks import (
    RunStartError,
    check_run_values,
    check_train_batches,
)
from emoshare_sb.training.run_guards import (
    LOCK_FILE,
    FolderLock,
    changed_hparams,
)
from emoshare_sb.utils.io import (
    atomic_write,
    make_temp_folder,
    write_json,
    write_results_json,
)
from tests.conftest import REPO, recipe_rows

ROW = recipe_rows()["ComParE23_row_02"]  # hparams/fbank_ecapa.yaml
SCRIPT = REPO / ROW["Script_file"]


# ---------------------------------------------------------------- helpers


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_write_respects_the_umask(tmp_path, umask_022):
    with atomic_write(tmp_path / "a.txt") as handle:
        handle.write("x")
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o644
    write_json(tmp_path / "b.json", {"a": 1})
    assert stat.S_IMODE(os.stat(tmp_path / "b.json").st_mode) == 0o644
    folder = make_temp_folder(str(tmp_path), ".export-")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755


def test_an_export_folder_respects_the_umask(tmp_path, tiny_hubert, umask_022):
    from emoshare_sb.inference.interfaces import _tiny_experiment, export_model

    experiment = _tiny_experiment(str(tmp_path / "exp"), tiny_hubert)
    folder = export_model(experiment, str(tmp_path / "export"))
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755
    for name in ("export_info.json", "hyperparams.yaml", "model.ckpt"):
        mode = stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode)
        assert mode == 0o644, (name, oct(mode))


def test_atomic_write_refuses_a_symlink(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep", encoding="utf-8")
    folder = tmp_path / "run"
    folder.mkdir()
    os.symlink(outside, folder / "results.json")
    with pytest.raises(OSError, match="results.json is a symbolic link"):
        write_json(folder / "results.json", {"a": 1})
    assert outside.read_text(encoding="utf-8") == "keep"
    assert os.path.islink(folder / "results.json")


def test_results_json_is_strict(tmp_path):
    with pytest.raises(ValueError, match="rho is nan"):
        write_json(tmp_path / "x.json", {"rho": math.nan})
    assert not (tmp_path / "x.json").exists()
    errors = write_results_json(
        tmp_path / "r.json",
        {"devel": {"spearman": {"mean": math.nan}, "per_gender": math.inf}},
        ["spearman.mean"],
    )
    assert errors == ["devel.spearman.mean is nan (written as null)"]
    text = (tmp_path / "r.json").read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    # Strict parsers reject bare NaN: parse_constant is called for them.
    data = json.loads(text, parse_constant=lambda c: pytest.fail(c))
    assert data["devel"] == {"spearman": {"mean": None}, "per_gender": None}
    assert data["errors"] == errors


def _checkpointer(folder, model=None):
    return AtomicCheckpointer(folder, {"model": model or torch.nn.Linear(2, 1)})


def test_find_checkpoints_leaves_out_non_finite_scores(tmp_path):
    model = torch.nn.Linear(2, 1)
    plain = Checkpointer(tmp_path, {"model": model})  # as older runs wrote them
    for score in (0.5, 0.3, math.nan, 0.1):
        plain.save_checkpoint(meta={"spearman": score})
        time.sleep(0.01)  # distinct recency
    found = _checkpointer(tmp_path, model).find_checkpoints(
        max_key="spearman", max_num_checkpoints=2
    )
    assert [c.meta["spearman"] for c in found] == [0.5, 0.3]
    # Nor is the NaN checkpoint resumed, even when it is the newest.
    plain.save_checkpoint(meta={"spearman": math.nan})
    recovered = _checkpointer(tmp_path, model).recover_if_possible()
    assert recovered.meta["spearman"] == 0.1


def test_no_checkpoint_with_a_nan_metric_or_nan_weights_is_saved(tmp_path):
    model = torch.nn.Linear(2, 1)
    checkpointer = _checkpointer(tmp_path, model)
    with pytest.raises(
        NonFiniteCheckpointError, match="spearman is not finite"
    ):
        checkpointer.save_checkpoint(meta={"spearman": math.nan})
    with torch.no_grad():
        model.weight[0, 0] = math.nan
    with pytest.raises(
        NonFiniteCheckpointError, match="model.weight holds NaN"
    ):
        checkpointer.save_checkpoint(meta={"spearman": 0.5})
    assert checkpointer.list_checkpoints() == []


def test_a_nan_valid_metric_names_the_epoch(tmp_path):
    brain = EmotionBrain.__new__(EmotionBrain)  # only its checkpointer is used
    brain.checkpointer = _checkpointer(tmp_path)
    with pytest.raises(NonFiniteCheckpointError) as error:
        brain.save_epoch_checkpoint(
            3, {"spearman": math.nan}, ["spearman"], num_to_keep=2
        )
    assert str(error.value).startswith("epoch 3: the valid spearman is nan")
    assert brain.checkpointer.list_checkpoints() == []
    brain.save_epoch_checkpoint(4, {"spearman": 0.2}, ["spearman"], 2)
    assert len(brain.checkpointer.list_checkpoints()) == 1


def test_a_truncated_checkpoint_falls_back_to_the_previous_one(
    tmp_path, caplog
):
    model = torch.nn.Linear(2, 1)
    checkpointer = _checkpointer(tmp_path, model)
    first = checkpointer.save_checkpoint(meta={"epoch": 1})
    weights = model.weight.detach().clone()
    time.sleep(0.01)
    with torch.no_grad():
        model.weight += 1
    second = checkpointer.save_checkpoint(meta={"epoch": 2})
    path = second.path / "model.ckpt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    caplog.set_level("WARNING")
    recovered = _checkpointer(tmp_path, model).recover_if_possible()
    assert recovered.path == first.path
    assert torch.equal(model.weight, weights)
    assert f"Checkpoint {second.path} cannot be read" in caplog.text
    assert "rm -r" in caplog.text
    # Set aside: no later step (evaluation, averaging) picks it up.
    assert [c.path for c in checkpointer.list_checkpoints()] == [first.path]


def test_values_that_fail_late_are_refused():
    for plan, message in [
        ({"num_averaged_checkpoints": 0}, "--num_averaged_checkpoints"),
        ({"number_of_epochs": 0}, "--number_of_epochs must be at least 1"),
        ({"eval_window": 2.0, "eval_hop": 0}, "--eval_hop must be above 0"),
        ({"batch_size": 0}, "--batch_size must be at least 1"),
        ({"lr": math.nan}, "--lr must be a finite number"),
    ]:
        with pytest.raises(RunStartError, match=message):
            check_run_values(plan)
    check_run_values({"eval_window": 0.0, "eval_hop": 0})  # hop unused


def test_a_batch_larger_than_the_training_set_is_refused():
    with pytest.raises(RunStartError, match="use --batch_size 8 or less"):
        check_train_batches(8, {"batch_size": 64, "drop_last": True})
    check_train_batches(8, {"batch_size": 64, "drop_last": False})


def test_changed_hparams_lists_each_difference(tmp_path):
    saved = tmp_path / "hyperparams.yaml"
    saved.write_text(
        "# Generated 2026-01-01 from:\nlr: 0.001\nbatch_size: 8\n"
        "opt: !name:torch.optim.Adam\n  lr: 0.001\n",
        encoding="utf-8",
    )
    import ruamel.yaml

    plan = ruamel.yaml.YAML(typ="rt").load(
        "lr: 0.5\nbatch_size: 4\nopt: !name:torch.optim.Adam\n  lr: 0.5\n"
    )
    assert changed_hparams(str(saved), plan) == [
        "lr: 0.001 -> 0.5",
        "batch_size: 8 -> 4",
        "opt: {'lr': 0.001} -> {'lr': 0.5}",
    ]
    assert changed_hparams(str(saved), plan, ignore=["lr", "opt"]) == [
        "batch_size: 8 -> 4"
    ]


def test_a_lock_from_a_killed_process_does_not_block(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from emoshare_sb.training.run_guards import FolderLock\n"
            f"lock = FolderLock({str(tmp_path)!r})\n"
            "lock.acquire()\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunStartError, match=f"process {holder.pid}"):
            FolderLock(str(tmp_path)).acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    lock = FolderLock(str(tmp_path))
    lock.acquire()  # the kernel released the dead process's lock
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
    lock.release()


def test_progress_bars_are_labelled_and_line_wise_off_a_terminal():
    import io

    stream = io.StringIO()
    set_label("test, averaged")
    bar = labelled_tqdm(range(400), file=stream)
    for step in bar:
        bar.set_postfix(train_loss=step)  # SpeechBrain's, every step
    set_label(None)
    lines = stream.getvalue().splitlines()
    assert 11 <= len(lines) <= 13  # 0 %, 10 %, ..., 100 %
    assert all(line.startswith("test, averaged:") for line in lines)
    assert all(len(line) < 120 for line in lines)
    assert "\r" not in stream.getvalue()


# ---------------------------------------------------------------- recipes


def run_row(output_folder, *overrides, flags=None, timeout=600):
    """Runs the fbank ComParE row with extra overrides (replacing the row's
    flags of the same names); the process."""
    overrides = [str(o) for o in overrides]
    replaced = {o[2:].split("=")[0] for o in overrides if o.startswith("--")}
    row_flags = [
        flag
        for flag in shlex.split(
            ROW["test_debug_flags"] if flags is None else flags
        )
        if flag[2:].split("=")[0] not in replaced
    ]
    command = [
        sys.executable,
        str(SCRIPT),
        ROW["Hparam_file"],
        *row_flags,
        "--device=cpu",
        f"--output_folder={output_folder}",
        *map(str, overrides),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def last_line(process):
    return process.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def finished_run(recipe_samples, tmp_path_factory):
    """One finished run of the fbank row (read, not changed, until the last test)."""
    del recipe_samples
    folder = tmp_path_factory.mktemp("guards") / "run"
    process = run_row(folder)
    assert process.returncode == 0, process.stderr[-3000:]
    return folder, process


def test_evaluation_progress_names_split_and_model(finished_run):
    _, process = finished_run
    for label in (
        "train, epoch 1:",
        "devel, epoch 2:",
        "devel, best:",
        "test, best:",
        "devel, averaged:",
        "test, averaged:",
    ):
        assert label in process.stderr, label
    progress = [line for line in process.stderr.splitlines() if "%|" in line]
    assert progress and max(len(line) for line in progress) < 150


def test_resume_refuses_changed_hparams(finished_run):
    folder, _ = finished_run
    before = (folder / "hyperparams.yaml").read_bytes()
    process = run_row(folder, "--lr", "0.5")
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    line = last_line(process)
    assert line.startswith(f"error: {folder} holds a run started with other")
    assert "lr: 0.001 -> 0.5" in line
    assert "--accept_changed_hparams True" in line
    assert (folder / "hyperparams.yaml").read_bytes() == before


def test_a_second_run_into_the_folder_stops_naming_the_holder(finished_run):
    folder, _ = finished_run
    lock = FolderLock(str(folder))
    lock.acquire()
    try:
        process = run_row(folder)
    finally:
        lock.release()
    assert process.returncode == 2
    assert f"(process {os.getpid()})" in last_line(process)
    assert "in use by another run" in last_line(process)


def test_symlinks_in_the_output_folder_are_refused(tmp_path, recipe_samples):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n", encoding="utf-8")
    folder = tmp_path / "run"
    for name in ("hyperparams.yaml", "env.log", "train.py", "log.txt"):
        folder.mkdir(exist_ok=True)
        os.symlink(outside, folder / name)
        process = run_row(folder)
        assert process.returncode == 2, process.stderr[-2000:]
        assert last_line(process).startswith(
            f"error: {folder / name} is a symbolic link"
        )
        assert outside.read_text(encoding="utf-8") == "keep\n"
        os.remove(folder / name)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["--data_folder", "/nonexistent/corpus", "--skip_prep", "False"],
            "--data_folder '/nonexistent/corpus' does not exist",
        ),
        (["--num_averaged_checkpoints", "0"], "--num_averaged_checkpoints"),
        (["--number_of_epochs", "0"], "--number_of_epochs must be at least 1"),
        (["--eval_window", "2.0", "--eval_hop", "0"], "--eval_hop must be"),
        (["--batch_size", "64"], "larger than the training set (8 clips)"),
        (["--lr", "abc"], "--lr expects a number"),
    ],
)
def test_a_failed_start_stops_early_and_leaves_no_folder(
    tmp_path, recipe_samples, overrides, message
):
    folder = tmp_path / "run"
    process = run_row(folder, *overrides)
    assert process.returncode == 2, process.stderr[-2000:]
    assert "Traceback" not in process.stderr
    assert message in last_line(process)
    assert not folder.exists()


def test_a_missing_data_folder_is_named_before_any_model_is_loaded(tmp_path):
    """The default YAML's hub encoder cannot load offline: the path error wins."""
    folder = tmp_path / "run"
    process = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "hparams/hubert_attn.yaml",
            "--data_folder",
            "/nonexistent/corpus",
            f"--output_folder={folder}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
    )
    assert process.returncode == 2
    assert last_line(process) == (
        "error: --data_folder '/nonexistent/corpus' does not exist: give the "
        "corpus folder"
    )
    assert not folder.exists()


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="needs a machine without CUDA"
)
def test_cuda_without_a_gpu_says_use_cpu(tmp_path, recipe_samples):
    folder = tmp_path / "run"
    process = run_row(folder, "--device", "cuda")
    assert process.returncode == 2
    assert last_line(process) == "error: no CUDA device; use --device cpu"
    assert not folder.exists()


def constant_manifest(source, destination):
    """A copy of a manifest whose clips all have the same targets."""
    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    fields = list(rows[0])
    first = rows[0]
    for row in rows:
        for field in fields[3:]:
            row[field] = first[field]
    with open(destination, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return destination


def _flag(name):
    (value,) = [
        f.split("=", 1)[1]
        for f in shlex.split(ROW["test_debug_flags"])
        if f.startswith(f"--{name}=")
    ]
    return value


def test_a_nan_devel_score_stops_the_run_naming_the_epoch(
    tmp_path, recipe_samples
):
    """Constant devel targets: Spearman is undefined (NaN) from epoch 1."""
    devel = constant_manifest(
        REPO / _flag("valid_annotation"), tmp_path / "devel.csv"
    )
    folder = tmp_path / "run"
    process = run_row(folder, f"--valid_annotation={devel}")
    assert process.returncode == 1
    assert "Traceback" not in process.stderr
    assert last_line(process).startswith(
        "error: epoch 1: the devel spearman is nan"
    )
    save = folder / "save"
    assert not [p for p in save.iterdir() if p.name.startswith("CKPT+")]


def test_a_nan_test_score_is_null_in_results_and_fails_the_run(
    tmp_path, recipe_samples
):
    test = constant_manifest(
        REPO / _flag("valid_annotation"), tmp_path / "t.csv"
    )
    folder = tmp_path / "run"
    process = run_row(folder, f"--test_annotation={test}")
    assert process.returncode == 1
    line = last_line(process)
    assert line.startswith(f"error: {folder / 'results.json'}: ")
    assert "; test.spearman.mean is nan (written as null)" in line
    text = (folder / "results.json").read_text(encoding="utf-8")
    results = json.loads(text, parse_constant=lambda c: pytest.fail(c))
    assert results["test"]["spearman"]["mean"] is None
    assert "test.spearman.mean is nan (written as null)" in results["errors"]


def test_resume_with_accepted_changes_and_a_truncated_checkpoint(finished_run):
    """Changes the shared run: last in the module."""
    folder, _ = finished_run
    checkpoints = sorted(
        (p for p in (folder / "save").iterdir() if p.name.startswith("CKPT+")),
        key=lambda p: p.stat().st_mtime,
    )
    newest = checkpoints[-1] / "model.ckpt"
    newest.write_bytes(newest.read_bytes()[:100])
    process = run_row(
        folder, "--number_of_epochs", "3", "--accept_changed_hparams", "True"
    )
    assert process.returncode == 0, process.stderr[-3000:]
    log = (folder / "log.txt").read_text(encoding="utf-8")
    assert (
        "changed hyperparameter (--accept_changed_hparams True): "
        "number_of_epochs: 2 -> 3" in log
    )
    assert f"Checkpoint {checkpoints[-1]} cannot be read" in log
    assert f"falling back to {checkpoints[-2].name}" in log
    assert "number_of_epochs: 3" in (folder / "hyperparams.yaml").read_text(
        encoding="utf-8"
    )
    train_log = (folder / "train_log.txt").read_text(encoding="utf-8")
    assert "epoch: 3" in train_log
