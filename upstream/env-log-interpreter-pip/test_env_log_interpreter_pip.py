"""``env.log`` lists the packages of the interpreter that runs the experiment.

``get_environment_description`` runs ``pip freeze`` through the shell: the
first ``pip`` on ``PATH``, which is another environment's whenever the
experiment's virtualenv is not activated (``.venv/bin/python train.py``,
cron, an IDE). ``env.log`` then records the wrong package versions. Fails
on SpeechBrain 1.1.2, passes with patch.diff.
"""

import os
import sys

from speechbrain.utils.logger import get_environment_description


def test_env_log_lists_this_interpreters_packages(tmp_path, monkeypatch):
    impostor = tmp_path / "pip"
    impostor.write_text("#!/bin/sh\necho another-environment==9.9\n")
    impostor.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    description = get_environment_description()

    assert "another-environment==9.9" not in description
    # This interpreter's own packages are listed (torch is a dependency).
    assert "\ntorch==" in description or "\ntorch @" in description, (
        f"no torch in the packages listed for {sys.executable}"
    )
