"""Loading a model folder runs no code its YAML names (issue 11.1).

Every refused folder is checked *before* HyperPyYAML evaluates anything:
each payload would create a ``PWNED`` file, and none may appear.
"""

import os
import shutil
import textwrap

import pytest
import torch

from emoshare_sb.cli.export import main as export_main
from emoshare_sb.cli.predict import main as predict_main
from emoshare_sb.inference.folders import load_state_dict_strict
from emoshare_sb.inference.interfaces import (
    EmotionShareRegressor,
    _tiny_experiment,
    export_model,
    load_model,
)
from emoshare_sb.inference.safety import UnsafeHparamsError, check_hparams_text
from emoshare_sb.synthetic import make_tiny_ssl_model


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety")
    return _tiny_experiment(
        str(root / "experiment"), make_tiny_ssl_model(str(root / "ssl"))
    )


@pytest.fixture(scope="module")
def exported(experiment, tmp_path_factory):
    return export_model(
        experiment, str(tmp_path_factory.mktemp("exported") / "model")
    )


def payloads(marker):
    """YAML lines that would each create ``marker`` if evaluated."""
    return {
        "apply_os_system": f'pwn: !apply:os.system ["touch {marker}"]',
        "apply_eval": (
            f"pwn: !apply:eval [\"__import__('os').system('touch {marker}')\"]"
        ),
        "new_popen": f'pwn: !new:subprocess.Popen [["touch", "{marker}"]]',
        "speechbrain_shell": (
            "pwn: !new:speechbrain.utils.superpowers.run_shell "
            f'["touch {marker}"]'
        ),
        "module": "pwn: !module:os",
        "python_tag": f"pwn: !!python/object/apply:os.system ['touch {marker}']",
    }


def copy_with(folder, destination, line):
    shutil.copytree(folder, destination)
    path = os.path.join(destination, "hyperparams.yaml")
    with open(path, "a") as handle:
        handle.write(line + "\n")
    return path


@pytest.mark.parametrize("name", sorted(payloads("X")))
def test_an_export_with_code_is_refused_before_anything_runs(
    exported, tmp_path, monkeypatch, capsys, name
):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    folder = tmp_path / "evil"
    path = copy_with(exported, folder, payloads(marker)[name])
    line = len(open(path).read().splitlines())
    with pytest.raises(UnsafeHparamsError) as error:
        EmotionShareRegressor.from_hparams(str(folder))
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: ") and "trust_code" in message
    assert "\n" not in message
    with pytest.raises(UnsafeHparamsError):
        load_model(str(folder))
    wav = tmp_path / "a.wav"
    import soundfile

    soundfile.write(wav, torch.zeros(16000).numpy(), 16000)
    assert predict_main(["-m", str(folder), str(wav), "--no_progress"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line}" in err and "--trust-code" in err
    assert not marker.exists()


def test_trust_code_is_the_explicit_opt_in(exported, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "TRUSTED"
    folder = tmp_path / "own"
    copy_with(exported, folder, f'mine: !apply:os.system ["touch {marker}"]')
    model = load_model(str(folder), trust_code=True)
    assert marker.exists()  # the user asked for it
    assert model.predict_batch(torch.randn(1, 16000)).shape == (1, 2)


def test_the_interface_class_must_come_from_emoshare_sb(exported, tmp_path):
    folder = tmp_path / "other_interface"
    shutil.copytree(exported, folder)
    path = folder / "hyperparams.yaml"
    text = path.read_text().replace(
        "interface: emoshare_sb.inference.interfaces.EmotionShareRegressor",
        "interface: antigravity.Thing",
    )
    path.write_text(text)
    with pytest.raises(UnsafeHparamsError, match="outside emoshare_sb"):
        load_model(str(folder))


def test_an_experiment_with_code_in_its_model_is_not_exported(
    experiment, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(experiment, run)
    path = run / "hyperparams.yaml"
    text = path.read_text().replace(
        "hidden_size: 8",
        "hidden_size: !apply:eval [\"__import__('os').system('touch P') or 8\"]",
    )
    path.write_text(text)
    line = next(
        i for i, t in enumerate(text.splitlines(), 1) if "apply:eval" in t
    )
    with pytest.raises(UnsafeHparamsError) as error:
        export_model(str(run), str(tmp_path / "model"))
    assert f"{path}:{line}" in str(error.value)
    assert "key 'head'" in str(error.value)
    assert export_main([str(run), str(tmp_path / "model")]) == 2
    assert "key 'head'" in capsys.readouterr().err
    with pytest.raises(UnsafeHparamsError):
        load_model(str(run))  # loading the experiment directly: refused too
    assert not (tmp_path / "model").exists() and not (tmp_path / "P").exists()
    # Keys inference never loads (the training part) are not its business.
    clean = tmp_path / "clean"
    shutil.copytree(experiment, clean)
    with open(clean / "hyperparams.yaml", "a") as handle:
        handle.write("seed_all: !apply:os.getpid []\n")
    export_model(str(clean), str(tmp_path / "clean_model"))


def test_the_recipes_model_definitions_pass():
    """What the recipes' YAMLs put in a model: sizes by !apply:len, activations."""
    check_hparams_text(
        textwrap.dedent(
            """\
            emotions: [Calm, Sad]
            head: !new:emoshare_sb.nnet.heads.MLPHead
                input_size: 32
                output_size: !apply:len [[Calm, Sad]]
                activation: !name:torch.nn.GELU
            layers: !apply:getattr [!ref <head>, hidden_size]
            soft: !new:speechbrain.nnet.activations.Softmax
                apply_log: True
            pair: !tuple (1, 2)
            folder: !PLACEHOLDER
            """
        )
    )
    with pytest.raises(UnsafeHparamsError, match="private attribute"):
        check_hparams_text("x: !apply:getattr [!ref <head>, __class__]")
    with pytest.raises(UnsafeHparamsError, match="not a class"):
        check_hparams_text("x: !new:emoshare_sb.inference.folders._yaml")
    with pytest.raises(UnsafeHparamsError, match="!include"):
        check_hparams_text("x: !include:other.yaml")


def test_weights_are_loaded_with_weights_only(tmp_path, monkeypatch):
    path = tmp_path / "w.ckpt"
    torch.save(torch.nn.Linear(2, 3).state_dict(), path)
    calls = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    load_state_dict_strict(torch.nn.Linear(2, 3), str(path))
    assert calls == [True]
    # And a pickle that runs code is refused by it.
    evil = tmp_path / "evil.ckpt"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    torch.save({"weight": Payload()}, evil)
    with pytest.raises(Exception, match="Weights only load failed"):
        load_state_dict_strict(torch.nn.Linear(2, 3), str(evil))
    assert not (tmp_path / "PWNED").exists()
