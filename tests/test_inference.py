"""Inference: export a trained ComParE experiment, load it offline, reproduce the recipe."""

import csv
import os
import shutil

import pytest
import torch
from speechbrain.dataio.batch import PaddedBatch

from emoshare_sb.data.audio import AudioReadError, read_audio
from emoshare_sb.inference.interfaces import (
    EmotionShareRegressor,
    export_model,
    interface_class,
    load_model,
)
from tests.conftest import run_recipe

RECIPE = "recipes/ComParE23/train.py"
HPARAMS = "hparams/hubert_attn.yaml"
BATCH_SIZE = 3

_TRAINED = {}


def train_tiny_compare23(tmp_path_factory, corpus, ssl_source):
    """Trains the ComParE recipe once per session on the small corpus (2 epochs).

    Shared by the inference, command-line and report tests, which import it.
    """
    if "folder" not in _TRAINED:
        output = tmp_path_factory.mktemp("trained_compare23") / "experiment"
        run_recipe(
            RECIPE,
            HPARAMS,
            "--data_folder",
            corpus,
            "--ssl_source",
            ssl_source,
            "--output_folder",
            output,
            "--number_of_epochs",
            2,
            "--device",
            "cpu",
            "--batch_size",
            BATCH_SIZE,
            "--num_averaged_checkpoints",
            2,
        )
        _TRAINED["folder"] = output
    return _TRAINED["folder"]


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# Reproduction tolerance (11.19): a printed value may differ from the recipe's
# by one unit of its last printed digit (rounding of a float that moved) plus
# 1e-5. Float32 sums change with the thread count (OpenMP reductions), by
# ~1e-7 here; the bound holds for OMP_NUM_THREADS=1 and 2 alike.
REPRODUCTION_ATOL = 1e-5


def assert_printed_close(predicted, expected, atol=REPRODUCTION_ATOL):
    """Printed predictions ``{clip: [str, ...]}`` agree within the tolerance.

    Numbers compare within one unit of the expected value's last printed
    digit plus ``atol``; labels (an MSP model's class) are left to the
    caller.
    """
    assert predicted.keys() == expected.keys()
    for clip, values in expected.items():
        got = predicted[clip]
        assert len(got) == len(values), clip
        for mine, theirs in zip(got, values, strict=True):
            try:
                number = float(theirs)
            except ValueError:
                continue  # a label: checked by the caller's rule
            decimals = len(theirs.partition(".")[2])
            bound = 10.0**-decimals + atol
            assert abs(float(mine) - number) <= bound, (clip, mine, theirs)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, small_compare23, tiny_hubert):
    return train_tiny_compare23(tmp_path_factory, small_compare23, tiny_hubert)


@pytest.fixture(scope="module")
def exported(experiment, tmp_path_factory):
    """An export, moved after writing: it must not depend on where it was made."""
    folder = export_model(
        experiment, tmp_path_factory.mktemp("export") / "model"
    )
    moved = tmp_path_factory.mktemp("moved") / "model"
    shutil.move(folder, moved)
    return moved


@pytest.fixture(scope="module")
def model(exported):
    return load_model(str(exported))


def recipe_batches(experiment):
    """The recipe's devel batches: sorted by duration, BATCH_SIZE clips, zero-padded."""
    rows = sorted(
        read_csv(experiment / "save" / "devel.csv"),
        key=lambda r: float(r["duration"]),
    )
    for first in range(0, len(rows), BATCH_SIZE):
        chunk = rows[first : first + BATCH_SIZE]
        wavs, lens = PaddedBatch(
            [{"sig": read_audio(r["wav"])} for r in chunk]
        ).sig
        yield [r["ID"] for r in chunk], wavs, lens


def predict_devel_as_printed(model, experiment):
    predictions = {}
    for ids, wavs, lens in recipe_batches(experiment):
        for clip, row in zip(ids, model.predict_batch(wavs, lens), strict=True):
            predictions[clip] = [f"{v:.6f}" for v in row.tolist()]
    return predictions


def recipe_devel_predictions(experiment, names):
    rows = read_csv(experiment / "predictions" / "devel.csv")
    return {r["filename"]: [r[n] for n in names] for r in rows}


def test_export_holds_weights_encoder_and_inference_yaml(exported, tiny_hubert):
    assert sorted(os.listdir(exported)) == [
        "encoder",
        "export_info.json",
        "hyperparams.yaml",
        "model.ckpt",
    ]
    assert {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    } <= set(os.listdir(exported / "encoder"))
    text = (exported / "hyperparams.yaml").read_text()
    assert (
        str(tiny_hubert) not in text
    )  # the encoder is read from encoder/, not the source
    for key in (
        "interface:",
        "model_folder: !PLACEHOLDER",
        "window: 8.0",
        "hop: 4.0",
        "modules:",
        "pretrainer:",
        "<model_folder>/model.ckpt",
    ):
        assert key in text
    assert interface_class(str(exported)) is EmotionShareRegressor


def test_exported_model_reproduces_the_recipe_devel_predictions(
    exported, experiment
):
    # HF_HUB_OFFLINE=1 (conftest): the export loads without any hub access.
    model = EmotionShareRegressor.from_hparams(
        exported, run_opts={"device": "cpu"}
    )
    assert (
        model.output_names
        == list(read_csv(experiment / "predictions" / "devel.csv")[0])[1:]
    )
    expected = recipe_devel_predictions(experiment, model.output_names)
    assert_printed_close(predict_devel_as_printed(model, experiment), expected)


def test_experiment_folder_loads_directly(experiment, tmp_path):
    model = EmotionShareRegressor.from_hparams(
        experiment, savedir=tmp_path / "inference", run_opts={"device": "cpu"}
    )
    expected = recipe_devel_predictions(experiment, model.output_names)
    assert_printed_close(predict_devel_as_printed(model, experiment), expected)
    # With savedir the generated inference YAML is kept; the experiment is untouched.
    assert (tmp_path / "inference" / "hyperparams.yaml").is_file()
    assert not (experiment / "save" / "averaged" / "hyperparams.yaml").exists()


def test_one_file_at_a_time_matches_the_recipes_padded_batches(
    model, experiment
):
    """A clip scored alone gets the prediction it got inside a padded batch.

    Exact frame lengths (``emoshare_sb.lobes.feature_lengths``) keep padded
    frames out of the pooling, so only float rounding differs.
    """
    expected = recipe_devel_predictions(experiment, model.output_names)
    for row in read_csv(experiment / "save" / "devel.csv"):
        predicted = model.predict_file(row["wav"])
        assert set(predicted) == set(model.output_names)
        for name, value in zip(
            model.output_names, expected[row["ID"]], strict=True
        ):
            assert predicted[name] == pytest.approx(float(value), abs=1e-4)


def test_long_recording_is_scored_in_windows(model, exported, tmp_path):
    import numpy as np
    import soundfile

    path = str(tmp_path / "long.wav")
    seconds = 17.5
    t = np.arange(int(seconds * 16000)) / 16000
    soundfile.write(
        path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32"), 16000
    )
    scored = model.score_file(path)
    assert scored.duration == pytest.approx(seconds)
    # 8 s windows every 4 s; the last one is aligned to the end of the clip.
    assert [(w["start"], w["end"]) for w in scored.windows] == [
        (0.0, 8.0),
        (4.0, 12.0),
        (8.0, 16.0),
        (9.5, 17.5),
    ]
    mean = torch.tensor(
        [[w["values"][n] for n in model.output_names] for w in scored.windows]
    ).mean(0)
    assert torch.allclose(
        torch.tensor(list(scored.summary.values())), mean, atol=1e-6
    )
    # predict_batch takes the recipe's windowed path and agrees.
    signal = read_audio(path)
    assert torch.allclose(model.predict_batch(signal)[0], mean, atol=1e-5)
    # window 0: the whole clip at once.
    whole = load_model(str(exported), overrides={"window": 0})
    assert (
        whole.hparams.window == 0 and len(whole.score_file(path).windows) == 1
    )


def test_fine_tuned_encoder_checkpoint_is_exported_and_loaded(
    experiment, tmp_path
):
    fine_tuned = tmp_path / "fine_tuned"
    shutil.copytree(
        experiment / "save" / "averaged", fine_tuned / "save" / "averaged"
    )
    shutil.copy(
        experiment / "hyperparams.yaml", fine_tuned / "hyperparams.yaml"
    )
    base = load_model(str(experiment))
    state = {k: v + 0.01 for k, v in base.mods.encoder.state_dict().items()}
    torch.save(state, fine_tuned / "save" / "averaged" / "encoder.ckpt")

    folder = export_model(fine_tuned, tmp_path / "export")
    assert "encoder.ckpt" in os.listdir(folder)
    assert (
        "<model_folder>/encoder.ckpt"
        in open(os.path.join(folder, "hyperparams.yaml")).read()
    )
    model = load_model(folder)
    for key, value in model.mods.encoder.state_dict().items():
        assert torch.equal(value, state[key]), key
    wav = torch.randn(16000)
    assert not torch.allclose(model.predict_batch(wav), base.predict_batch(wav))


def test_a_checkpoint_that_does_not_fit_fails_to_load(experiment, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(
        experiment / "save" / "averaged", broken / "save" / "averaged"
    )
    shutil.copy(experiment / "hyperparams.yaml", broken / "hyperparams.yaml")
    state = torch.load(broken / "save" / "averaged" / "model.ckpt")
    state.pop(next(iter(state)))
    torch.save(state, broken / "save" / "averaged" / "model.ckpt")
    with pytest.raises(RuntimeError, match="Missing key"):
        load_model(str(broken))


def test_export_is_complete_or_absent(experiment, tmp_path):
    target = tmp_path / "model"
    export_model(experiment, target)
    with pytest.raises(FileExistsError):
        export_model(experiment, target)
    (target / "stale.txt").write_text("old")
    export_model(experiment, target, window=20.0, overwrite=True)
    assert not (target / "stale.txt").exists()
    assert "window: 20.0" in (target / "hyperparams.yaml").read_text()
    assert "hop: 10.0" in (target / "hyperparams.yaml").read_text()
    assert [
        p for p in os.listdir(tmp_path) if p.startswith(".")
    ] == []  # no staging left


def test_bad_sources_are_explained(exported, tmp_path):
    with pytest.raises(ValueError, match="nowhere' does not exist"):
        EmotionShareRegressor.from_hparams(tmp_path / "nowhere")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="not a folder"):
        EmotionShareRegressor.from_hparams(tmp_path / "file")
    with pytest.raises(ValueError, match="not a model or experiment folder"):
        export_model(tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="not a trained experiment folder"):
        export_model(exported, tmp_path / "out")


def test_unreadable_file_raises_audio_read_error(model, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    with pytest.raises(AudioReadError, match="bad.wav"):
        model.predict_file(str(bad))


def test_export_command_line(experiment, tmp_path, capsys):
    from emoshare_sb.cli.export import main

    target = tmp_path / "model"
    assert main([str(experiment), str(target), "--window", "0"]) == 0
    assert (
        "window:\n" in (target / "hyperparams.yaml").read_text()
    )  # null: whole clips
    assert main([str(experiment), str(target)]) == 2
    assert "non-empty folder; pass --overwrite" in capsys.readouterr().err


def test_export_never_replaces_the_run_itself(experiment, tmp_path, capsys):
    """11.8: the run, a folder inside it or one above it is refused, even
    with --overwrite, and the run is left whole."""
    from emoshare_sb.cli.export import main

    run = tmp_path / "runs" / "run"
    shutil.copytree(experiment, run)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    for target, relation in (
        (run, "is the experiment"),
        (run / "export", "lies inside the experiment"),
        (run.parent, "contains the experiment"),
        (tmp_path, "contains the experiment"),
    ):
        assert main([str(run), str(target), "--overwrite"]) == 2
        assert relation in capsys.readouterr().err
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
