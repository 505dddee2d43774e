"""``train.py HPARAMS --help``: SpeechBrain's options, then the YAML's keys."""

import subprocess
import sys

import pytest

from emoshare_sb.training.cli_help import format_yaml_keys, yaml_keys

from .conftest import REPO

RECIPES = [
    ("recipes/ComParE23/train.py", "hparams/hubert_attn.yaml"),
    ("recipes/ComParE23/train_opensmile.py", "hparams/opensmile_svr.yaml"),
    ("recipes/MSP-Podcast/train.py", "hparams/msp_wavlm_tcgru.yaml"),
    (
        "recipes/MSP-Podcast/train_opensmile.py",
        "hparams/msp_opensmile_svm.yaml",
    ),
    (
        "recipes/IEMOCAP/train.py",
        "hparams/iemocap_hubert_wav2vec2_early_ecapa.yaml",
    ),
    (
        "recipes/IEMOCAP/train_opensmile.py",
        "hparams/iemocap_opensmile_svm.yaml",
    ),
]


@pytest.mark.parametrize("recipe, hparams", RECIPES)
def test_help_lists_yaml_keys_after_speechbrain_options(
    recipe, hparams, tmp_path
):
    """Every listed key appears with its default, after SpeechBrain's own
    options; nothing is written (no output folder) and the exit status is 0."""
    process = subprocess.run(
        [sys.executable, str(REPO / recipe), str(REPO / hparams), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    out = process.stdout
    assert "--device DEVICE" in out  # SpeechBrain's run options
    heading = out.index("YAML keys of ")
    assert out.index("--device DEVICE") < heading
    keys = yaml_keys(str(REPO / hparams))
    assert len(keys) >= 10
    listed = out[heading:]
    for key, default, _ in keys:
        assert f"\n  --{key} {default}\n" in listed + "\n", key
    assert "  --data_folder (required)\n" in listed
    assert list(tmp_path.iterdir()) == []


def test_help_shows_the_yaml_comments():
    """The comment on a key's line, or the comment lines above it."""
    text = format_yaml_keys(str(REPO / "hparams/msp_wavlm_tcgru.yaml"))
    assert (
        "  --ssl_layer 20\n      hidden state k: 0 = CNN output, k = k-th "
        "transformer layer (24 = last)\n"
    ) in text
    # A comment block above the key, joined into one paragraph.
    assert "  --no_vote_policy skip\n      Training clips whose raters" in text
    # Objects and private keys are the recipe's wiring, not options.
    for wiring in (
        "--encoder ",
        "--modules",
        "--__set_seed",
        "--epoch_counter",
    ):
        assert wiring not in text
    assert "  --noisy_snrs [15, 5]\n" in text


def test_help_without_yaml_says_how_to_list_keys(capsys):
    from emoshare_sb.training.cli_help import print_help_if_asked

    with pytest.raises(SystemExit) as stop:
        print_help_if_asked(["--help"])
    assert stop.value.code == 0
    assert "Give the YAML before --help" in capsys.readouterr().out


def test_help_for_a_missing_yaml_is_a_user_error(tmp_path, capsys):
    from emoshare_sb.training.cli_help import print_help_if_asked

    with pytest.raises(SystemExit) as stop:
        print_help_if_asked([str(tmp_path / "nope.yaml"), "--help"])
    assert stop.value.code == 2
    assert "cannot read" in capsys.readouterr().err
