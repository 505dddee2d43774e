"""Shared fixtures: tiny random encoders, small generated corpora, and the
runs of the recipe rows of ``tests/recipes/*.csv`` (SpeechBrain's format).

Everything is generated offline; nothing touches the network.

Authors
 * emoshare_sb contributors 2026
"""

import csv
import os
import pathlib
import shlex
import socket
import subprocess
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from emoshare_sb.synthetic.compare23 import make_compare23_corpus  # noqa: E402
from emoshare_sb.synthetic.encoders import make_tiny_ssl_model  # noqa: E402
from emoshare_sb.synthetic.recipe_samples import (  # noqa: E402
    make_recipe_samples,
)

REPO = pathlib.Path(__file__).resolve().parents[1]
RECIPE_CSV_FOLDER = REPO / "tests" / "recipes"
# Where the rows' test_debug_flags point (paths relative to the project root).
RECIPE_SAMPLES = REPO / "tests" / "tmp" / "samples"


@pytest.fixture(scope="session")
def tiny_hubert(tmp_path_factory):
    """A tiny random HuBERT saved as a local HF folder (hidden size 32, 2 layers)."""
    return make_tiny_ssl_model(
        str(tmp_path_factory.mktemp("tiny_hubert")), "hubert"
    )


@pytest.fixture(scope="session")
def small_compare23(tmp_path_factory):
    """A ComParE 2023 layout corpus of 12/6/6 clips, test labels withheld."""
    root = tmp_path_factory.mktemp("compare23") / "corpus"
    return make_compare23_corpus(
        str(root), n_train=12, n_devel=6, n_test=6, seed=3
    )


def run_recipe(recipe, hparams, *overrides, timeout=900, processes=1):
    """Runs a recipe script in a subprocess; returns the completed process.

    With ``processes > 1`` the recipe runs under ``torchrun`` on the CPU (gloo),
    as the README documents for several processes. Fails the test with the
    tail of the output when the script fails.
    """
    command = [
        sys.executable,
        str(REPO / recipe),
        str(REPO / hparams),
        *map(str, overrides),
    ]
    if processes > 1:
        torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
        command = [
            torchrun,
            f"--nproc_per_node={processes}",
            f"--master_port={_free_port()}",
            *command[1:],
            "--distributed_backend=gloo",
            "--device",
            "cpu",
        ]
    process = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    if process.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed ({process.returncode}):\n"
            f"{process.stdout[-3000:]}\n{process.stderr[-5000:]}"
        )
    return process


def tensorboard_scalars(folder):
    """``{tag: [(step, value), ...]}`` read back from the event files in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    events = EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recipe_rows():
    """The rows of ``tests/recipes/*.csv``, keyed as SpeechBrain's recipe tests key them.

    Returns
    -------
    dict
        ``{"<Dataset>_row_<NN>": row}`` (``NN`` is the CSV line), each row a
        dict of the CSV's columns, values stripped.
    """
    rows = {}
    for path in sorted(RECIPE_CSV_FOLDER.glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, skipinitialspace=True)
            for index, row in enumerate(reader):
                rows[f"{path.stem}_row_{index + 2:02d}"] = {
                    key: (value or "").strip() for key, value in row.items()
                }
    return rows


def recipe_row_id(hparams_file):
    """The id of the row that lists ``hparams_file`` (e.g. ``hparams/hubert_attn.yaml``)."""
    (recipe_id,) = [
        key
        for key, row in recipe_rows().items()
        if row["Hparam_file"] == hparams_file
    ]
    return recipe_id


def recipe_row_command(row, output_folder):
    """The shell command SpeechBrain's ``run_recipe_tests`` runs for ``row``.

    As there: ``Script_file Hparam_file test_debug_flags --device=cpu
    --output_folder=...``, with ``--debug --debug_persistently`` added when
    ``test_debug_checks`` has no ``performance_check`` (ours all have one,
    so each row's flags alone make the run tiny), run by a shell from the
    project root. Two differences: this virtualenv's Python rather than
    ``python`` on the PATH, and the project root on ``PYTHONPATH`` next to
    the script's folder, so that this checkout's package is the one imported.
    """
    python_path = f"{REPO}:{REPO / os.path.dirname(row['Script_file'])}"
    command = (
        f"PYTHONPATH={shlex.quote(python_path)} {shlex.quote(sys.executable)} "
        f"{row['Script_file']} {row['Hparam_file']} {row['test_debug_flags']} "
        f"--device=cpu --output_folder={shlex.quote(str(output_folder))}"
    )
    if "performance_check" not in row["test_debug_checks"]:
        command += " --debug --debug_persistently"
    return command


def run_row_with(hparams_file, output_folder, *flags, timeout=600):
    """Runs the recipe row of ``hparams_file`` into ``output_folder``, with
    ``flags`` (``--name=value``) replacing the row's flags of the same names.

    Returns the finished process, whatever its exit status (for tests of
    refusals); one thread, offline, this checkout's package imported.
    """
    row = recipe_rows()[recipe_row_id(hparams_file)]
    names = {flag.split("=")[0] for flag in flags}
    row_flags = [
        flag
        for flag in shlex.split(row["test_debug_flags"])
        if flag.split("=")[0] not in names
    ]
    script = REPO / row["Script_file"]
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}:{script.parent}",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        [
            sys.executable,
            str(script),
            hparams_file,
            *row_flags,
            *flags,
            "--device=cpu",
            f"--output_folder={output_folder}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def recipe_samples():
    """The encoders, corpora and manifests the recipe rows point at (made once)."""
    return make_recipe_samples(str(RECIPE_SAMPLES))


@pytest.fixture(scope="session")
def recipe_row_run(recipe_samples, tmp_path_factory):
    """Runs a recipe row (once per session) and returns its output folder.

    Each run's ``stdout.txt`` and ``stderr.txt`` are kept in its output
    folder, as SpeechBrain keeps them; a failed run fails the test with the
    tail of its error output.
    """
    del recipe_samples  # generated before any row runs
    done = {}

    def run(recipe_id):
        """Runs the row ``recipe_id`` unless it ran already; its output folder."""
        if recipe_id not in done:
            output = tmp_path_factory.mktemp("recipe_rows") / recipe_id
            output.mkdir()
            command = recipe_row_command(recipe_rows()[recipe_id], output)
            # One thread per process: the machine's few cores are shared.
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            with (
                open(output / "stdout.txt", "w") as stdout,
                open(output / "stderr.txt", "w") as stderr,
            ):
                process = subprocess.run(
                    command,
                    shell=True,
                    cwd=REPO,
                    env=env,
                    stdout=stdout,
                    stderr=stderr,
                    timeout=900,
                )
            done[recipe_id] = (output, process.returncode)
        output, returncode = done[recipe_id]
        if returncode != 0:
            pytest.fail(
                f"{recipe_id} failed ({returncode}): "
                f"{recipe_row_command(recipe_rows()[recipe_id], output)}\n"
                f"{(output / 'stderr.txt').read_text()[-5000:]}"
            )
        return output

    return run


def speechbrain_checks():
    """The folder of SpeechBrain's consistency checks, or a skip (a failure under CI).

    They come with the project's workplace, not with the repository:
    ``../shared/speechbrain-checks`` beside the checkout (CI puts them there
    too), or the folder ``$SPEECHBRAIN_CHECKS`` names.
    """
    folder = pathlib.Path(
        os.environ.get("SPEECHBRAIN_CHECKS")
        or REPO.parent / "shared" / "speechbrain-checks"
    )
    if (folder / "run").is_file():
        return folder
    reason = (
        f"SpeechBrain's consistency checks are not at {folder}: they come "
        "with the workplace as ../shared/speechbrain-checks beside the "
        "checkout (or set SPEECHBRAIN_CHECKS to their folder)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)
