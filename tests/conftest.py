"""Shared fixtures: tiny random encoders and small generated corpora.

Everything is generated offline; nothing touches the network.
"""

import os
import pathlib
import socket
import subprocess
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from emoshare_sb.synthetic.compare23 import make_compare23_corpus  # noqa: E402
from emoshare_sb.synthetic.encoders import make_tiny_ssl_model  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


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
