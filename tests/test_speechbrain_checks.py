"""SpeechBrain's own consistency checks pass on the files an upstream PR holds.

``../shared/speechbrain-checks/run`` (SpeechBrain's ``check_yaml.py``,
``check_docstrings.py`` and the recipe-CSV checks, unchanged) checks the
project from the folder it is started in: every row of
``tests/recipes/*.csv``, every YAML against its script, and the docstrings
of every Python file under that folder whose path contains ``recipes`` or a
package name. Started from the checkout, that walk also enters ``.venv``
(CI creates it inside the clone), where setuptools' vendored
``more_itertools/recipes.py`` fails it, and any other ignored build output.
So the checks run on a copy of the project's own files (``git ls-files
--cached --others --exclude-standard``: tracked files and new files that are
not ignored, i.e. what a pull request to SpeechBrain contains), with
``PYTHON`` pointing at this virtualenv's Python.

The checks come with the workplace, not the repository: at
``../shared/speechbrain-checks`` beside the checkout (where CI has them too)
or wherever ``$SPEECHBRAIN_CHECKS`` says. Without them the test is skipped,
except under CI (``CI=true``), where it fails.
"""

import os
import shutil
import subprocess
import sys

from tests.conftest import REPO, speechbrain_checks


def project_files():
    """The project's own files: tracked, and new ones that are not ignored.

    Returns
    -------
    list of str
        Paths relative to the project root.
    """
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    names = listing.stdout.decode("utf-8").split("\0")
    # A tracked file deleted in the work tree is not part of the project now.
    return [name for name in names if name and (REPO / name).is_file()]


def copy_project(destination):
    """Copies :func:`project_files` into ``destination``; returns it."""
    for name in project_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    return destination


def test_speechbrain_consistency_checks_pass_on_the_project_files(tmp_path):
    checks = speechbrain_checks()
    project = copy_project(tmp_path / "project")
    assert not (project / ".venv").exists()
    process = subprocess.run(
        [str(checks / "run")],
        cwd=project,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = process.stdout.strip().splitlines()
    assert process.returncode == 0 and lines[-1].endswith(" 0 failed"), (
        process.stdout[-6000:] + process.stderr[-3000:]
    )
