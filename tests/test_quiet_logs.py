"""Quiet, readable logs, checked on a real (tiny) MSP-Podcast WavLM run.

The run is the MSP-Podcast WavLM row of ``tests/recipes/MSP-Podcast.csv``
(the session's ``recipe_row_run``), whose padded batches go through WavLM's
attention, and whose log SpeechBrain configures as in any recipe run.
"""

import re

import pytest

from tests.conftest import recipe_row_id

PIP_FREEZE_LINE = re.compile(r"^[A-Za-z0-9_.-]+==\S+$", re.MULTILINE)


@pytest.fixture(scope="module")
def msp_run(recipe_row_run):
    return recipe_row_run(recipe_row_id("hparams/msp_wavlm_tcgru.yaml"))


def test_log_txt_holds_no_pip_freeze_but_env_log_does(msp_run):
    log = (msp_run / "log.txt").read_text()
    assert "speechbrain.utils.superpowers - DEBUG" not in log
    assert not PIP_FREEZE_LINE.search(log), PIP_FREEZE_LINE.search(log)
    # Every line of the log is a record (time stamp first), from the top.
    first = log.splitlines()[:5]
    assert all(
        re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line) for line in first
    )
    # The package list is kept, in its one place.
    env = (msp_run / "env.log").read_text()
    assert re.search(r"^torch==\S+$", env, re.MULTILINE)


def test_no_torchvision_notice_and_no_mismatched_mask_warning(msp_run):
    output = "".join(
        (msp_run / name).read_text()
        for name in ("stdout.txt", "stderr.txt", "log.txt")
    )
    assert "torchvision is not available" not in output
    assert "mismatched key_padding_mask and attn_mask" not in output
    # The run did train and evaluate (the log is not quiet by being empty).
    assert "Epoch: 2" in output or "epoch: 2" in output
