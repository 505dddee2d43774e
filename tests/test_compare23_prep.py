"""ComParE 2023 data preparation: manifests, idempotence and every bad-input case."""

import csv
import os
import shutil

import pytest

from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS, prepare_compare23
from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.synthetic.compare23 import make_compare23_corpus


@pytest.fixture
def corpus(tmp_path):
    return make_compare23_corpus(
        str(tmp_path / "corpus"), n_train=5, n_devel=3, n_test=3, seed=1
    )


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def edit_labels(corpus, split, line, column, value):
    """Sets one cell of lab/<split>.csv (line is 1-based, header is line 1)."""
    path = os.path.join(corpus, "lab", f"{split}.csv")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    rows[line - 1][column] = value
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_manifests_hold_every_clip_with_duration_and_targets(corpus, tmp_path):
    emotions = prepare_compare23(corpus, tmp_path / "out")
    assert emotions == COMPARE23_EMOTIONS
    train = read_rows(tmp_path / "out/train.csv")
    assert len(train) == 5
    assert list(train[0]) == ["ID", "duration", "wav"] + COMPARE23_EMOTIONS
    assert 1.2 <= float(train[0]["duration"]) <= 4.0
    assert os.path.isfile(train[0]["wav"])
    assert max(float(train[0][e]) for e in emotions) == 1.0
    test = read_rows(tmp_path / "out/test.csv")
    assert len(test) == 3 and test[0]["Anger"] == "nan"


def test_unmasked_test_labels_are_used_when_present(tmp_path):
    corpus = make_compare23_corpus(
        str(tmp_path / "c"), 3, 2, 2, test_labels=True
    )
    prepare_compare23(corpus, tmp_path / "out")
    assert read_rows(tmp_path / "out/test.csv")[0]["Anger"] != "nan"


def test_second_run_with_same_options_skips_and_changed_labels_redo(
    corpus, tmp_path
):
    prepare_compare23(corpus, tmp_path / "out")
    manifest = tmp_path / "out/train.csv"
    first_mtime = manifest.stat().st_mtime_ns
    prepare_compare23(corpus, tmp_path / "out")
    assert manifest.stat().st_mtime_ns == first_mtime
    edit_labels(corpus, "train", 2, 1, "0.5")
    prepare_compare23(corpus, tmp_path / "out")
    assert read_rows(manifest)[0]["Anger"] == "0.5"


def test_other_emotions_are_read_from_the_header(tmp_path):
    root = tmp_path / "other"
    (root / "wav").mkdir(parents=True)
    (root / "lab").mkdir()
    source = make_compare23_corpus(str(tmp_path / "src"), 2, 1, 1)
    for split, names in (
        ("train", ["00001.wav", "00002.wav"]),
        ("devel", ["00003.wav"]),
        ("test", ["00004.wav"]),
    ):
        with open(root / "lab" / f"{split}.csv", "w") as handle:
            handle.write("filename,Joy,Awe\n")
            for name in names:
                shutil.copy(
                    os.path.join(source, "wav", name), root / "wav" / name
                )
                handle.write(
                    f"{name},{'?,?' if split == 'test' else '0.5,1'}\n"
                )
    assert prepare_compare23(str(root), tmp_path / "out") == ["Joy", "Awe"]


def test_audio_under_raw_wav_is_found(corpus, tmp_path):
    os.makedirs(os.path.join(corpus, "raw"))
    shutil.move(os.path.join(corpus, "wav"), os.path.join(corpus, "raw", "wav"))
    prepare_compare23(corpus, tmp_path / "out")
    assert "/raw/wav/" in read_rows(tmp_path / "out/devel.csv")[0]["wav"]


@pytest.mark.parametrize(
    "value, message",
    [
        ("abc", "is not a number"),
        ("", "is not a number"),
        ("nan", "is not finite"),
        ("-0.1", r"outside \[0, 1\]"),
        ("1.5", r"outside \[0, 1\]"),
    ],
)
def test_bad_share_names_file_line_and_field(corpus, tmp_path, value, message):
    path = edit_labels(corpus, "devel", 3, 4, value)
    with pytest.raises(DataPrepError, match=message) as error:
        prepare_compare23(corpus, tmp_path / "out")
    assert error.value.file == path and error.value.line == 3
    assert error.value.field == COMPARE23_EMOTIONS[3]
    assert not (tmp_path / "out").exists(), (
        "no manifest may be written on error"
    )


def test_missing_audio_names_the_row(corpus, tmp_path):
    os.remove(os.path.join(corpus, "wav", "00002.wav"))
    with pytest.raises(
        DataPrepError, match="00002.wav' does not exist"
    ) as error:
        prepare_compare23(corpus, tmp_path / "out")
    assert error.value.line == 3 and error.value.field == "filename"


def test_corrupt_audio_names_the_file(corpus, tmp_path):
    with open(os.path.join(corpus, "wav", "00001.wav"), "wb") as handle:
        handle.write(b"not audio")
    with pytest.raises(DataPrepError, match="00001.wav"):
        prepare_compare23(corpus, tmp_path / "out")


@pytest.mark.parametrize(
    "header, message",
    [
        (COMPARE23_EMOTIONS[:-1], r"missing \['Tiredness'\]"),
        (COMPARE23_EMOTIONS + ["Joy"], r"unexpected \['Joy'\]"),
        (
            ["Angr"] + COMPARE23_EMOTIONS[1:],
            r"missing \['Anger'\]; unexpected \['Angr'\]",
        ),
    ],
)
def test_wrong_emotion_columns_are_named(corpus, tmp_path, header, message):
    path = os.path.join(corpus, "lab", "devel.csv")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    width = len(header) + 1
    rows = [["filename"] + header] + [(r + ["0.5"])[:width] for r in rows[1:]]
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(DataPrepError, match=message) as error:
        prepare_compare23(corpus, tmp_path / "out", emotions=COMPARE23_EMOTIONS)
    assert error.value.line == 1


def test_duplicate_file_names_across_splits(corpus, tmp_path):
    path = edit_labels(corpus, "devel", 2, 0, "00001.wav")
    with pytest.raises(
        DataPrepError,
        match="duplicate file name '00001.wav'.*train.csv, line 2",
    ) as error:
        prepare_compare23(corpus, tmp_path / "out")
    assert error.value.file == path and error.value.line == 2


def test_partly_unlabelled_training_split_is_rejected(corpus, tmp_path):
    path = os.path.join(corpus, "lab", "train.csv")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    rows[2] = [rows[2][0]] + ["?"] * 9
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(DataPrepError, match="not a number") as error:
        prepare_compare23(corpus, tmp_path / "out")
    assert error.value.line == 3


def test_empty_split_and_missing_label_file(corpus, tmp_path):
    with open(os.path.join(corpus, "lab", "devel.csv"), "w") as handle:
        handle.write("filename," + ",".join(COMPARE23_EMOTIONS) + "\n")
    with pytest.raises(DataPrepError, match="the split has no rows"):
        prepare_compare23(corpus, tmp_path / "out")
    os.remove(os.path.join(corpus, "lab", "devel.csv"))
    with pytest.raises(
        DataPrepError, match="label file for split 'devel' does not exist"
    ):
        prepare_compare23(corpus, tmp_path / "out")


def test_failed_rerun_keeps_the_previous_manifests(corpus, tmp_path):
    prepare_compare23(corpus, tmp_path / "out")
    before = (tmp_path / "out/train.csv").read_text()
    edit_labels(corpus, "train", 2, 1, "2.0")
    with pytest.raises(DataPrepError):
        prepare_compare23(corpus, tmp_path / "out")
    assert (tmp_path / "out/train.csv").read_text() == before
    assert sorted(os.listdir(tmp_path / "out")) == [
        "devel.csv",
        "prepare_options.json",
        "test.csv",
        "train.csv",
    ]
