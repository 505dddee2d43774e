"""SpeechBrain's style tooling is clean on the project's files.

``ruff format --check`` and ``ruff check`` with SpeechBrain's settings (our
``pyproject.toml``), ``yamllint`` with its ``.yamllint.yaml`` and
``codespell``, at the versions ``requirements-dev.txt`` pins (SpeechBrain's
``.pre-commit-config.yaml`` pins ruff 0.12.4), over the files an upstream
pull request holds: those ``git ls-files --cached --others
--exclude-standard`` lists (not ``.venv``, results or other ignored output).
"""

import importlib.metadata
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.test_speechbrain_checks import project_files

BIN = os.path.dirname(sys.executable)


def pinned_versions():
    """``{package: version}`` of the ``==`` pins in ``requirements-dev.txt``."""
    text = (REPO / "requirements-dev.txt").read_text(encoding="utf-8")
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.MULTILINE))


def run_tool(*command):
    """Runs a tool of this virtualenv from the project root; fails with its output."""
    process = subprocess.run(
        [os.path.join(BIN, command[0]), *command[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, (
        f"{' '.join(command[:3])} ...:\n{process.stdout[-5000:]}{process.stderr[-2000:]}"
    )


def files_ending(*suffixes):
    """The project's files with one of ``suffixes``."""
    return [name for name in project_files() if name.endswith(suffixes)]


@pytest.mark.parametrize("tool", ["ruff", "yamllint", "codespell"])
def test_tools_are_the_pinned_versions(tool):
    assert importlib.metadata.version(tool) == pinned_versions()[tool]


def test_ruff_format_is_clean():
    run_tool(
        "ruff", "format", "--check", "--force-exclude", *files_ending(".py")
    )


def test_ruff_check_is_clean():
    run_tool("ruff", "check", "--force-exclude", *files_ending(".py"))


def test_yamllint_is_clean():
    yaml_files = files_ending(".yaml", ".yml")
    assert "hparams/hubert_attn.yaml" in yaml_files
    run_tool("yamllint", "-f", "parsable", *yaml_files)


def test_codespell_is_clean():
    run_tool("codespell", *project_files())
