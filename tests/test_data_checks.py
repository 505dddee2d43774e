"""Bad input that every data preparation stops on, names, or skips as asked:
NaN/Inf audio, '$' in paths, label-file encodings, clip names that are not
plain names, directories and link loops, over-long CSV fields, audio deleted
after preparation (also mid-epoch, in a DataLoader worker)."""

import codecs
import csv
import glob
import os
import shutil

import numpy as np
import pytest
import soundfile
import speechbrain as sb
import torch

from emoshare_sb.data.compare23 import prepare_compare23
from emoshare_sb.data.errors import DataPrepError, exit_on_data_error
from emoshare_sb.data.iemocap import prepare_iemocap
from emoshare_sb.data.manifest import SKIPPED_FILE
from emoshare_sb.data.msp_podcast import prepare_msp_podcast
from emoshare_sb.data.table import prepare_from_table
from emoshare_sb.synthetic.compare23 import make_compare23_corpus
from emoshare_sb.synthetic.iemocap import make_iemocap_corpus
from emoshare_sb.synthetic.msp_podcast import make_msp_podcast_corpus


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def poison(path, value=np.nan, at=0.25):
    """Rewrites an audio file as 32-bit float with one non-finite sample."""
    samples, rate = soundfile.read(path, dtype="float32")
    samples[int(at * rate)] = value
    soundfile.write(path, samples, rate, subtype="FLOAT")


# One small corpus per preparation, and how to prepare it ---------------------


def compare23_case(root):
    corpus = make_compare23_corpus(
        str(root / "compare23"), n_train=4, n_devel=3, n_test=2, seed=1
    )
    label = os.path.join(corpus, "lab", "train.csv")
    return corpus, os.path.join(corpus, "wav", "00002.wav"), label, 3


def msp_case(root):
    corpus = make_msp_podcast_corpus(
        str(root / "msp"), "v1.12", n_per_split=4, seed=2
    )
    label = os.path.join(corpus, "Labels", "labels_consensus.csv")
    # A validation clip: training clips without class votes may be dropped.
    index, row = next(
        (i, r)
        for i, r in enumerate(read_rows(label))
        if r["Split_Set"] == "Development"
    )
    return (
        corpus,
        os.path.join(corpus, "Audios", row["FileName"]),
        label,
        index + 2,
    )


def iemocap_case(root):
    corpus = make_iemocap_corpus(str(root / "iemocap"), utterances_per_dialog=2)
    wav = sorted(
        glob.glob(os.path.join(corpus, "Session2/sentences/wav/*/*.wav"))
    )[0]
    return corpus, wav, None, None


def table_case(root):
    folder = root / "table"
    (folder / "audio").mkdir(parents=True)
    lines = ["path,speaker,valence"]
    for i in range(6):
        soundfile.write(
            folder / "audio" / f"{i}.wav",
            0.1 * np.sin(np.arange(8000) / 7.0),
            16000,
        )
        lines.append(f"audio/{i}.wav,s{i},0.{i}")
    (folder / "table.csv").write_text("\n".join(lines) + "\n")
    return (
        str(folder / "table.csv"),
        str(folder / "audio" / "2.wav"),
        str(folder / "table.csv"),
        4,
    )


def prepare(kind, corpus, save, **options):
    if kind == "compare23":
        return prepare_compare23(corpus, save, **options)
    if kind == "msp":
        return prepare_msp_podcast(corpus, save, **options)
    if kind == "iemocap":
        return prepare_iemocap(corpus, save, test_session=1, **options)
    return prepare_from_table(
        corpus, save, target_columns=["valence"], **options
    )


CASES = {
    "compare23": compare23_case,
    "msp": msp_case,
    "iemocap": iemocap_case,
    "table": table_case,
}


# 1. Non-finite audio ---------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_audio_stops_preparation_naming_the_file(
    kind, value, tmp_path
):
    corpus, wav, label, line = CASES[kind](tmp_path)
    poison(wav, value)
    with pytest.raises(DataPrepError) as error:
        prepare(kind, corpus, str(tmp_path / "save"))
    message = str(error.value)
    assert os.path.basename(wav) in message
    assert "1 non-finite sample (NaN or Inf), the first at 0.250 s" in message
    assert "bad_audio: skip" in message
    if label is not None:
        assert message.startswith(f"{label}, line {line}")
    assert not os.path.exists(tmp_path / "save" / "train.csv")


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_audio_skip_leaves_the_clip_out_and_lists_it(
    kind, tmp_path, caplog
):
    corpus, wav, _, _ = CASES[kind](tmp_path)
    poison(wav)
    save = tmp_path / "save"
    prepare(kind, corpus, str(save), bad_audio="skip")
    manifests = [
        p for p in glob.glob(str(save / "*.csv")) if SKIPPED_FILE not in p
    ]
    listed = [row["wav"] for m in manifests for row in read_rows(m)]
    assert wav not in listed and len(listed) > 0
    skipped = read_rows(save / SKIPPED_FILE)
    assert [row["wav"] for row in skipped] == [wav]
    assert "non-finite" in skipped[0]["reason"]
    assert f"Skipped {skipped[0]['split']} clip" in caplog.text


def test_an_up_to_date_skip_preparation_still_reports_the_skipped_clips(
    tmp_path, caplog
):
    corpus, wav, _, _ = compare23_case(tmp_path)
    poison(wav)
    save = str(tmp_path / "save")
    prepare_compare23(corpus, save, bad_audio="skip")
    caplog.clear()
    prepare_compare23(corpus, save, bad_audio="skip")
    assert "up to date" in caplog.text
    assert "1 clip(s) were left out for bad audio" in caplog.text
    # With the clip repaired and the default policy, the list goes away.
    soundfile.write(wav, np.zeros(16000, dtype="float32"), 16000)
    prepare_compare23(corpus, save)
    assert not os.path.exists(os.path.join(save, SKIPPED_FILE))
    assert wav in [
        row["wav"] for row in read_rows(os.path.join(save, "train.csv"))
    ]


def test_an_unknown_bad_audio_policy_is_named(tmp_path):
    corpus, _, _, _ = compare23_case(tmp_path)
    with pytest.raises(DataPrepError, match="bad_audio must be one of"):
        prepare_compare23(corpus, str(tmp_path / "save"), bad_audio="drop")


def test_integer_pcm_is_checked_from_its_header_only(tmp_path, monkeypatch):
    """Prep reads every sample only where a format can hold NaN (measured:
    a full read costs 3 to 5 header reads, see the report)."""
    from emoshare_sb.data import audio

    corpus, _, _, _ = compare23_case(tmp_path)

    def no_sample_reading(path):
        raise AssertionError(f"read the samples of {path}")

    monkeypatch.setattr(audio, "_load", no_sample_reading)
    prepare_compare23(corpus, str(tmp_path / "save"))  # PCM_16 WAV
    poison(os.path.join(corpus, "wav", "00001.wav"))  # now FLOAT
    with pytest.raises(AssertionError, match="00001.wav"):
        prepare_compare23(corpus, str(tmp_path / "save2"))


# 2. '$' in file names -----------------------------------------------------


def rename_clip(corpus, old, new):
    os.rename(
        os.path.join(corpus, "wav", old), os.path.join(corpus, "wav", new)
    )
    path = os.path.join(corpus, "lab", "train.csv")
    text = open(path, encoding="utf-8").read().replace(old, new)
    open(path, "w", encoding="utf-8").write(text)


def test_a_dollar_variable_in_a_file_name_is_refused_with_the_reason(tmp_path):
    corpus, _, label, _ = compare23_case(tmp_path)
    rename_clip(corpus, "00002.wav", "clip$1.wav")
    with pytest.raises(DataPrepError) as error:
        prepare_compare23(corpus, str(tmp_path / "save"))
    message = str(error.value)
    assert message.startswith(f"{label}, line 3, field 'filename'")
    assert "holds '$1.wav'" in message
    assert "DynamicItemDataset.from_csv" in message and "rename" in message


def test_a_dollar_that_is_no_variable_reaches_the_dataset_intact(tmp_path):
    """End to end: the manifest's path loads through SpeechBrain unchanged."""
    corpus, _, _, _ = compare23_case(tmp_path)
    rename_clip(corpus, "00002.wav", "clip$-1 $ x.wav")
    save = tmp_path / "save"
    prepare_compare23(corpus, str(save))
    dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(
        str(save / "train.csv"), output_keys=["id", "wav"]
    )
    paths = {item["id"]: item["wav"] for item in dataset}
    assert paths["clip$-1 $ x.wav"] == os.path.join(
        corpus, "wav", "clip$-1 $ x.wav"
    )
    assert os.path.isfile(paths["clip$-1 $ x.wav"])


def test_a_dollar_variable_in_the_corpus_path_is_refused(tmp_path):
    corpus = make_compare23_corpus(
        str(tmp_path / "$HOME" / "c"), n_train=2, n_devel=2, n_test=2
    )
    with pytest.raises(DataPrepError, match=r"audio folder path .* '\$HOME'"):
        prepare_compare23(corpus, str(tmp_path / "save"))


def test_a_dollar_variable_in_an_msp_speaker_id_is_refused(tmp_path):
    corpus, _, label, _ = msp_case(tmp_path)
    rows = list(csv.reader(open(label, encoding="utf-8")))
    rows[2][rows[0].index("SpkrID")] = "spk$a"
    with open(label, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(DataPrepError, match=r"line 3, field 'SpkrID'.*'\$a'"):
        prepare_msp_podcast(corpus, str(tmp_path / "save"))


# 3. Encodings ------------------------------------------------------------


def write_encoded(path, encoding):
    text = open(path, encoding="utf-8").read()
    with open(path, "wb") as handle:
        handle.write(text.encode(encoding))


@pytest.mark.parametrize("kind", ["compare23", "msp", "table"])
def test_latin1_label_files_are_named_with_the_line_and_the_fix(kind, tmp_path):
    corpus, _, label, _ = CASES[kind](tmp_path)
    lines = open(label, encoding="utf-8").read().splitlines()
    lines.append(lines[-1])  # a copy, made invalid UTF-8 below
    text = "\n".join(lines[:2] + ["café"] + lines[2:]) + "\n"
    with open(label, "wb") as handle:
        handle.write(text.encode("latin-1"))
    with pytest.raises(DataPrepError) as error:
        prepare(kind, corpus, str(tmp_path / "save"))
    message = str(error.value)
    assert message.startswith(f"{label}, line 3: not UTF-8 text (byte 0xe9")
    assert "UTF-8 (with or without BOM) or UTF-16 with BOM" in message
    assert "iconv" in message


@pytest.mark.parametrize("kind", ["compare23", "msp", "table"])
def test_utf16_label_files_with_bom_give_the_same_manifests(kind, tmp_path):
    corpus, _, label, _ = CASES[kind](tmp_path)
    prepare(kind, corpus, str(tmp_path / "utf8"))
    write_encoded(label, "utf-16")  # with BOM, as spreadsheet programs write it
    assert open(label, "rb").read(2) == codecs.BOM_UTF16_LE
    prepare(kind, corpus, str(tmp_path / "utf16"))
    for manifest in glob.glob(str(tmp_path / "utf8" / "*.csv")):
        name = os.path.basename(manifest)
        assert read_rows(manifest) == read_rows(tmp_path / "utf16" / name)


def test_utf16_without_bom_is_named(tmp_path):
    corpus, _, label, _ = compare23_case(tmp_path)
    write_encoded(label, "utf-16-le")
    with pytest.raises(
        DataPrepError,
        match=r"line 1: the file holds NUL bytes: it looks like UTF-16 without",
    ):
        prepare_compare23(corpus, str(tmp_path / "save"))


def test_iemocap_label_files_in_utf16_are_read_and_latin1_is_named(tmp_path):
    corpus, _, _, _ = iemocap_case(tmp_path)
    counts = prepare_iemocap(corpus, str(tmp_path / "a"), test_session=1)
    for path in glob.glob(
        os.path.join(corpus, "Session2/dialog/EmoEvaluation/*.txt")
    ):
        write_encoded(path, "utf-16")
    assert (
        prepare_iemocap(corpus, str(tmp_path / "b"), test_session=1) == counts
    )
    path = sorted(
        glob.glob(os.path.join(corpus, "Session3/dialog/EmoEvaluation/*.txt"))
    )[0]
    with open(path, "ab") as handle:
        handle.write("C-E2:\tNeutral;\t(déjà)\n".encode("latin-1"))
    with pytest.raises(DataPrepError, match=f"{path}, line .*not UTF-8 text"):
        prepare_iemocap(corpus, str(tmp_path / "c"), test_session=1)


def test_a_field_over_the_csv_limit_names_file_and_line(tmp_path):
    corpus, _, label, _ = compare23_case(tmp_path)
    lines = open(label, encoding="utf-8").read().splitlines()
    lines.insert(2, '"00099.wav,' + "x" * 140_000)  # a quote never closed
    open(label, "w", encoding="utf-8").write("\n".join(lines) + "\n")
    with pytest.raises(DataPrepError) as error:
        prepare_compare23(corpus, str(tmp_path / "save"))
    assert str(error.value).startswith(f"{label}, line 3: a field is longer")
    assert "double quote" in str(error.value)


# 4. Clip names that are not plain names ------------------------------------


def set_name(label, line, name, column=0):
    rows = list(csv.reader(open(label, encoding="utf-8")))
    rows[line - 1][column] = name
    with open(label, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def test_a_dot_slash_name_is_the_same_clip(tmp_path):
    corpus, _, _, _ = compare23_case(tmp_path)
    devel = os.path.join(corpus, "lab", "devel.csv")
    set_name(devel, 2, "./00001.wav")  # 00001.wav is in train
    with pytest.raises(DataPrepError) as error:
        prepare_compare23(corpus, str(tmp_path / "save"))
    message = str(error.value)
    assert message.startswith(f"{devel}, line 2, field 'filename'")
    assert "duplicate file name './00001.wav'" in message
    assert "train.csv, line 2 as '00001.wav'" in message


def test_a_normalised_name_is_the_clip_id(tmp_path):
    corpus, _, label, _ = compare23_case(tmp_path)
    set_name(label, 2, "./sub/../00001.wav")
    prepare_compare23(corpus, str(tmp_path / "save"))
    row = read_rows(tmp_path / "save" / "train.csv")[0]
    assert row["ID"] == "00001.wav"
    assert row["wav"] == os.path.join(corpus, "wav", "00001.wav")


@pytest.mark.parametrize("kind", ["compare23", "msp"])
@pytest.mark.parametrize("outside", ["../outside.wav", "absolute"])
def test_paths_outside_the_audio_folder_are_refused_unless_allowed(
    kind, outside, tmp_path
):
    corpus, wav, label, line = CASES[kind](tmp_path)
    target = os.path.join(os.path.dirname(os.path.dirname(wav)), "outside.wav")
    shutil.copy(wav, target)
    name = target if outside == "absolute" else outside
    set_name(label, line, name)
    with pytest.raises(DataPrepError) as error:
        prepare(kind, corpus, str(tmp_path / "save"))
    assert str(error.value).startswith(f"{label}, line {line}")
    assert f"the path '{name}' leads outside the audio folder" in str(
        error.value
    )
    assert "allow_outside_audio_folder" in str(error.value)
    prepare(
        kind, corpus, str(tmp_path / "save"), allow_outside_audio_folder=True
    )
    listed = [
        row["wav"]
        for path in glob.glob(str(tmp_path / "save" / "*.csv"))
        for row in read_rows(path)
    ]
    assert os.path.normpath(target) in listed


# 5. Not a file, and audio gone after preparation ------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: (os.remove(p), os.mkdir(p)), "is a directory, not a file"),
        (
            lambda p: (os.remove(p), os.symlink(os.path.basename(p), p)),
            "is a symbolic link loop",
        ),
        (
            lambda p: (os.remove(p), os.symlink("gone.wav", p)),
            "is a broken symbolic link (to 'gone.wav')",
        ),
        (lambda p: os.remove(p), "does not exist"),
    ],
)
def test_what_stands_where_an_audio_file_should_be_is_named(
    make, message, tmp_path
):
    corpus, wav, label, line = compare23_case(tmp_path)
    make(wav)
    with pytest.raises(DataPrepError) as error:
        prepare_compare23(corpus, str(tmp_path / "save"))
    assert str(error.value).startswith(f"{label}, line {line}")
    assert f"audio file '{wav}' {message}" in str(error.value)


def test_a_directory_where_a_label_file_should_be_is_named(tmp_path):
    corpus, _, label, _ = compare23_case(tmp_path)
    os.remove(label)
    os.mkdir(label)
    with pytest.raises(
        DataPrepError, match="label file for split 'train' is a directory"
    ):
        prepare_compare23(corpus, str(tmp_path / "save"))


def test_audio_deleted_after_preparation_is_found_by_the_next_one(tmp_path):
    corpus, wav, _, _ = compare23_case(tmp_path)
    prepare_compare23(corpus, str(tmp_path / "save"))
    os.remove(wav)  # the audio folder changes: the manifests are re-checked
    with pytest.raises(DataPrepError, match="00002.wav' does not exist"):
        prepare_compare23(corpus, str(tmp_path / "save"))


@pytest.mark.parametrize("num_workers", [0, 1])
def test_audio_deleted_mid_run_is_one_line_even_from_a_worker(
    num_workers, tmp_path
):
    from emoshare_sb.data.audio import read_audio

    corpus, wav, _, _ = compare23_case(tmp_path)
    prepare_compare23(corpus, str(tmp_path / "save"))
    os.remove(wav)

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio(path):
        return read_audio(path)

    dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(
        str(tmp_path / "save" / "train.csv"),
        dynamic_items=[audio],
        output_keys=["id", "sig"],
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=1, num_workers=num_workers
    )
    with pytest.raises(SystemExit) as exit_info, exit_on_data_error():
        for _ in loader:
            pass
    message = str(exit_info.value)
    assert "\n" not in message
    assert message.startswith(f"error: {wav}: cannot read audio: the path ")
    assert "does not exist" in message and "rerun the recipe" in message


# The recipe, end to end: one line and exit status 1 ---------------------------


def run_compare23(corpus, tiny_hubert, output, *overrides):
    import subprocess
    import sys

    from tests.conftest import REPO

    command = [
        sys.executable,
        str(REPO / "recipes/ComParE23/train.py"),
        str(REPO / "hparams/hubert_attn.yaml"),
        "--data_folder",
        corpus,
        "--ssl_source",
        tiny_hubert,
        "--encoder_dim",
        "32",
        "--output_folder",
        str(output),
        "--device",
        "cpu",
        "--debug",
        *map(str, overrides),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=600, env=env
    )


def test_the_recipe_stops_in_one_line_on_a_dollar_name(tmp_path, tiny_hubert):
    corpus, _, label, _ = compare23_case(tmp_path)
    rename_clip(corpus, "00002.wav", "clip$1.wav")
    process = run_compare23(corpus, tiny_hubert, tmp_path / "run")
    assert process.returncode == 2  # a user error at set-up
    assert "Traceback" not in process.stderr
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {label}, line 3, field 'filename'")
    assert "holds '$1.wav'" in last


def test_the_recipe_stops_in_one_line_on_audio_deleted_mid_run(
    tmp_path, tiny_hubert
):
    """The clip vanishes after preparation; a DataLoader worker (the YAML's
    num_workers: 2) finds it missing in the first epoch."""
    corpus, wav, _, _ = compare23_case(tmp_path)
    prepare_compare23(corpus, str(tmp_path / "run" / "save"))
    os.remove(wav)
    process = run_compare23(
        corpus,
        tiny_hubert,
        tmp_path / "run",
        "--skip_prep",
        "True",
        "--batch_size",
        2,  # --debug trains 2 batches: the 4 training clips, 00002.wav among them
    )
    assert process.returncode == 1
    assert "Traceback" not in process.stderr
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {wav}: cannot read audio: the path does")
    assert "rerun the recipe" in last
