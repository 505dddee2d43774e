"""Each upstream/ patch fixes a defect of the installed SpeechBrain, and only with the patch.

For every folder of ``upstream/`` (``patch.diff``, ``test_*.py``,
``PR.md``), the patch is applied to a copy of the installed SpeechBrain and
its test is run in a subprocess with that copy first on ``sys.path``: every
test function must pass there, and fail against the stock copy. All patches
also apply together, so they can be merged in any order.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest
import speechbrain

REPO = pathlib.Path(__file__).resolve().parents[1]
PATCHES = sorted(
    path
    for path in (REPO / "upstream").iterdir()
    if (path / "patch.diff").is_file()
)
INSTALLED = pathlib.Path(speechbrain.__file__).resolve().parent

# Checks, in the subprocess, that `speechbrain` is the copy under test.
CONFTEST = """
import os
import speechbrain

expected = os.environ["UPSTREAM_PATCH_SPEECHBRAIN"]
assert os.path.realpath(speechbrain.__file__).startswith(expected), (
    f"imported {speechbrain.__file__}, not the copy under test {expected}"
)
"""


def copy_speechbrain(root):
    """A copy of the installed SpeechBrain package under ``root``."""
    shutil.copytree(
        INSTALLED,
        root / "speechbrain",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return root


def apply(patch, root):
    """Applies ``patch`` (``a/speechbrain/...`` paths) to the copy in ``root``.

    With ``git apply`` (git is there wherever the repository was cloned):
    every hunk's context must match exactly; lines may have moved (after
    other patches).
    """
    done = subprocess.run(
        ["git", "apply", "-p1", "--whitespace=nowarn", str(patch)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, (
        f"{patch} does not apply:\n{done.stdout}{done.stderr}"
    )
    changed = {
        line.split()[-1][2:]
        for line in patch.read_text(encoding="utf-8").splitlines()
        if line.startswith("+++ ")
    }
    assert changed and all((root / path).is_file() for path in changed)


def run_tests(tests, root, run_dir):
    """Runs pytest on ``tests`` with the SpeechBrain of ``root``; ``{test: passed}``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (run_dir / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    for test in tests:
        shutil.copy(test, run_dir / test.name)
    report = run_dir / "report.xml"
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "UPSTREAM_PATCH_SPEECHBRAIN": str((root / "speechbrain").resolve()),
        "HF_HUB_OFFLINE": "1",
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "--rootdir",
            str(run_dir),
            *[test.name for test in tests],
        ],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    outcomes = {}
    for case in ElementTree.parse(report).iter("testcase"):
        failed = any(child.tag in ("failure", "error") for child in case)
        skipped = any(child.tag == "skipped" for child in case)
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = (
            "skipped" if skipped else ("failed" if failed else "passed")
        )
    return outcomes


def patch_tests(patch):
    """The test files of one patch folder."""
    tests = sorted(patch.glob("test_*.py"))
    assert tests, f"{patch} has no test_*.py"
    return tests


@pytest.fixture(scope="module")
def stock_outcomes(tmp_path_factory):
    """Every patch's tests, run once against an unpatched copy."""
    root = copy_speechbrain(tmp_path_factory.mktemp("stock"))
    tests = [test for patch in PATCHES for test in patch_tests(patch)]
    return run_tests(tests, root, root / "run")


def test_every_patch_folder_is_complete():
    assert PATCHES, "no upstream/*/patch.diff"
    for patch in PATCHES:
        assert (patch / "PR.md").is_file(), f"{patch} has no PR.md"
        patch_tests(patch)


def test_all_patches_apply_together(tmp_path):
    root = copy_speechbrain(tmp_path)
    for patch in PATCHES:
        apply(patch / "patch.diff", root)


@pytest.mark.parametrize("patch", PATCHES, ids=lambda path: path.name)
def test_patch_test_fails_on_stock_and_passes_with_the_patch(
    patch, stock_outcomes, tmp_path
):
    root = copy_speechbrain(tmp_path)
    apply(patch / "patch.diff", root)
    patched = run_tests(patch_tests(patch), root, tmp_path / "run")
    modules = {test.stem for test in patch_tests(patch)}
    stock = {
        name: outcome
        for name, outcome in stock_outcomes.items()
        if name.split("::")[0] in modules
    }
    assert patched, f"{patch.name}: no test ran"
    assert set(patched) == set(stock), (patched, stock)
    assert all(outcome == "passed" for outcome in patched.values()), patched
    assert all(outcome == "failed" for outcome in stock.values()), stock
