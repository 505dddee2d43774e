"""The generator command lines: ``--help`` everywhere, and each layout written."""

import os
import subprocess
import sys

import pytest

from emoshare_sb.synthetic.cli import GENERATORS, generator_main, main

from .conftest import REPO

MODULES = {
    "compare23": "compare23",
    "msp_podcast": "msp_podcast",
    "iemocap": "iemocap",
    "speech": "speech_corpus",
    "ssl": "encoders",
    "recipe_samples": "recipe_samples",
}


def run_module(module, *args):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_package_help_lists_every_generator():
    process = run_module("emoshare_sb.synthetic", "--help")
    assert process.returncode == 0, process.stderr
    for name in GENERATORS:
        assert f"--{name} DIR" in process.stdout
    for option in ("--layout", "--utterances_per_dialog", "--family"):
        assert option in process.stdout
    assert process.stderr == ""


def test_package_without_a_folder_is_a_usage_error():
    process = run_module("emoshare_sb.synthetic")
    assert process.returncode == 2
    assert "nothing to write" in process.stderr


@pytest.mark.parametrize("generator, module", sorted(MODULES.items()))
def test_module_help(generator, module):
    """Each generator module prints its usage (and nothing on stderr, e.g.
    no runpy warning about a module the package imported first)."""
    process = run_module(f"emoshare_sb.synthetic.{module}", "--help")
    assert process.returncode == 0, process.stderr
    assert process.stdout.startswith(
        f"usage: python -m emoshare_sb.synthetic.{module} "
    )
    for option in GENERATORS[generator].options:
        assert f"--{option}" in process.stdout
    assert process.stderr == ""


def test_msp_podcast_module_writes_the_layout_it_is_asked_for(tmp_path):
    folder = str(tmp_path / "msp")
    generator_main(
        "msp_podcast", [folder, "--layout", "v1.6", "--n_per_split", "4"]
    )
    # v1.6: Audio/, label/ and Partition.txt (v1.12 would write Audios/).
    assert sorted(os.listdir(folder)) == ["Audio", "Partition.txt", "label"]


def test_package_writes_every_small_layout_at_once(tmp_path, capsys):
    root = tmp_path
    main(
        [
            "--compare23", str(root / "compare23"),
            "--iemocap", str(root / "iemocap"),
            "--table", str(root / "table"),
            "--msp_podcast", str(root / "msp"),
            "--ssl", str(root / "wavlm"),
            "--family", "wavlm",
            "--n_train", "4", "--n_devel", "2", "--n_test", "2",
            "--n_per_split", "4", "--utterances_per_dialog", "1",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert sorted(os.listdir(root / "compare23")) == ["lab", "wav"]
    assert sorted(os.listdir(root / "compare23" / "lab")) == [
        "devel.csv",
        "test.csv",
        "test.unmasked.csv",
        "train.csv",
    ]
    assert sorted(os.listdir(root / "iemocap")) == [
        f"Session{i}" for i in range(1, 6)
    ]
    assert sorted(os.listdir(root / "msp")) == ["Audios", "Labels"]
    assert (root / "table" / "table.csv").is_file()
    assert (root / "table" / "corpus" / "wav").is_dir()
    assert (root / "wavlm" / "config.json").is_file()
    assert (
        '"model_type": "wavlm"' in (root / "wavlm" / "config.json").read_text()
    )
    # Each says where it wrote and how to run a recipe on it.
    assert "recipes/MSP-Podcast/train.py" in out
    # The encoder written in the same command is the one the commands use.
    assert f"--ssl_source {root / 'wavlm'} --ssl_layer 1" in out
    assert "recipes/IEMOCAP/train.py" in out
    assert "--table " + str(root / "table" / "table.csv") in out


def test_speech_module_writes_the_compare23_layout(tmp_path):
    folder = tmp_path / "speech"
    generator_main(
        "speech",
        [str(folder), "--n_train", "2", "--n_devel", "1", "--n_test", "1"],
    )
    assert len(list((folder / "wav").glob("*.wav"))) == 4
    assert (folder / "lab" / "train.csv").is_file()
