"""MSP-Podcast preparation: every release layout, vote distributions, bad rows."""

import csv
import math
import os
import time

import pytest

import emoshare_sb.data.msp_podcast as msp
from emoshare_sb.data import manifest
from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.manifest import OPTIONS_FILE
from emoshare_sb.data.msp_podcast import (
    MANIFEST_COLUMNS,
    MSP_CLASS_NAMES,
    prepare_msp_podcast,
)
from emoshare_sb.synthetic.msp_podcast import (
    MSP_LAYOUTS,
    make_msp_podcast_corpus,
    write_msp_podcast_layout,
)

N_PER_SPLIT = 4


def read_manifest(path):
    with open(path, newline="") as handle:
        return {row["ID"]: row for row in csv.DictReader(handle)}


def distribution(row):
    return [float(row[name]) for name in MSP_CLASS_NAMES]


def label_paths(root, layout):
    settings = MSP_LAYOUTS[layout]
    labels = os.path.join(root, settings["labels"])
    return {
        "consensus": os.path.join(labels, settings["consensus"]),
        "detailed": os.path.join(labels, "labels_detailed.csv"),
        "partitions": None
        if settings["partitions"] is None
        else os.path.join(root, settings["partitions"]),
        "audio": os.path.join(root, settings["audio"]),
    }


def edit_line(path, line, old, new):
    """Replaces ``old`` by ``new`` on a 1-based line of a text file."""
    with open(path, newline="") as handle:
        lines = handle.readlines()
    assert old in lines[line - 1], (old, lines[line - 1])
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    with open(path, "w", newline="") as handle:
        handle.writelines(lines)


def line_of(path, text):
    """The 1-based number of the first line holding ``text``."""
    with open(path, newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if text in line:
                return number
    raise AssertionError(f"{text} not in {path}")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("msp_corpora")
    return {
        layout: make_msp_podcast_corpus(
            str(root / layout), layout=layout, n_per_split=N_PER_SPLIT, seed=1
        )
        for layout in MSP_LAYOUTS
    }


# Hand-made clips whose vote distributions are computed by hand below.
TIE = "MSP-PODCAST_0001_0001.wav"
ALL_OTHER = "MSP-PODCAST_0001_0002.wav"
UNKNOWN_SPEAKER = "MSP-PODCAST_0002_0001.wav"
VALID = "MSP-PODCAST_0003_0001.wav"
TEST3 = "MSP-PODCAST_test3_0001.wav"
HAND_CLIPS = [
    {
        "name": TIE,
        "split": "train",
        "emo_class": "X",
        "dimensions": (4.0, 1.0, 7.0),
        "spk_id": "1",
        "gender": "Female",
        "ratings": [
            ("W1", "Happy", ["Neutral"], (4, 1, 7)),
            ("W2", "Happy", [], (4, 1, 7)),
            ("W3", "Neutral", ["Happy", "Sad"], (4, 1, 7)),
            ("W4", "Neutral", ["Confused", "Neutral"], (4, 1, 7)),
            ("W5", "Other-Concerned", ["Sad"], (4, 1, 7)),
        ],
    },
    {
        "name": ALL_OTHER,
        "split": "train",
        "emo_class": "O",
        "dimensions": (2.5, 3.0, 3.5),
        "spk_id": "1",
        "gender": "Female",
        "ratings": [
            ("W1", "Other-Bored", [], (2, 3, 3)),
            ("W2", "Other", ["Amused"], (3, 3, 4)),
        ],
    },
    {
        "name": UNKNOWN_SPEAKER,
        "split": "train",
        "emo_class": "A",
        "dimensions": (6.0, 2.0, 5.0),
        "spk_id": "Unknown",
        "gender": "Unknown",
        "ratings": [
            ("W1", "Angry", ["Disgust"], (6, 2, 5)),
            ("W2", "Anger", [], (6, 2, 5)),
            ("W3", "Contempt", ["Angry"], (6, 2, 5)),
        ],
    },
    {
        "name": VALID,
        "split": "valid",
        "emo_class": "S",
        "dimensions": (2.0, 2.0, 2.0),
        "spk_id": "3",
        "gender": "Male",
        "ratings": [("W1", "Sad", [], (2, 2, 2))],
    },
    {"name": TEST3, "split": "test3"},
]


@pytest.mark.parametrize("layout", sorted(MSP_LAYOUTS))
def test_every_layout_prepares(corpora, tmp_path, layout):
    classes = prepare_msp_podcast(corpora[layout], str(tmp_path))
    assert classes == MSP_CLASS_NAMES
    expected = ["train", "valid", "test1", "test2"]
    if MSP_LAYOUTS[layout]["test3"] is not None:
        expected.append("test3")
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"{s}.csv" for s in expected] + [OPTIONS_FILE]
    )
    for split in expected:
        with open(tmp_path / f"{split}.csv", newline="") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == MANIFEST_COLUMNS
            rows = list(reader)
        # The all-Other clip of train is dropped by the default policy.
        assert len(rows) == N_PER_SPLIT - (split == "train")
        for row in rows:
            assert os.path.isfile(row["wav"])
            assert 0.5 <= float(row["duration"]) <= 2.0
            if split == "test3":
                assert row["emo_class"] == "" and row["has_distribution"] == "0"
                assert math.isnan(float(row["arousal"]))
                continue
            assert row["emo_class"] in (
                "",
                "A",
                "S",
                "H",
                "U",
                "F",
                "D",
                "C",
                "N",
            )
            for dimension in ("arousal", "valence", "dominance"):
                assert 0.0 <= float(row[dimension]) <= 1.0
            if row["has_distribution"] == "1":
                # Other votes carry no class mass, so shares sum to at most 1.
                assert 0.0 < sum(distribution(row)) <= 1.0 + 1e-6
        assert any(row["spk_id"] == "Unknown" for row in rows)


@pytest.mark.parametrize("layout", ["v1.12", "v2.0", "v1.6", "v1.8-partitions"])
@pytest.mark.parametrize("include_secondary", [False, True])
def test_hand_computed_vote_distributions(tmp_path, layout, include_secondary):
    corpus = write_msp_podcast_layout(
        str(tmp_path / "corpus"), HAND_CLIPS, layout
    )
    prepare_msp_podcast(
        corpus, str(tmp_path / "manifests"), include_secondary=include_secondary
    )
    train = read_manifest(tmp_path / "manifests" / "train.csv")
    tie, angry = train[TIE], train[UNKNOWN_SPEAKER]
    #         A     S     H     U  F  D     C     N
    if include_secondary:
        # Distinct emotions per rater: {H,N} {H} {N,H,S} {N} {Other,S}: 9 votes
        # cast, H 3, N 3, S 2 (Other carries no class mass).
        expected_tie = [0, 2 / 9, 3 / 9, 0, 0, 0, 0, 3 / 9]
        # {A,D} {A} {C,A} -> A 3, D 1, C 1.
        expected_angry = [3 / 5, 0, 0, 0, 0, 1 / 5, 1 / 5, 0]
    else:
        # Primary votes H H N N Other: the Other rater carries no class mass.
        # Normalised by the 5 raters, as FORMATS.md specifies.
        expected_tie = [0, 0, 0.4, 0, 0, 0, 0, 0.4]
        expected_angry = [2 / 3, 0, 0, 0, 0, 0, 1 / 3, 0]
    assert distribution(tie) == pytest.approx(expected_tie, abs=1e-6)
    assert distribution(angry) == pytest.approx(expected_angry, abs=1e-6)
    # Consensus X gives no class; A/V/D are mapped from 1..7 to [0, 1].
    assert tie["emo_class"] == "" and tie["has_distribution"] == "1"
    assert [float(tie[d]) for d in ("arousal", "valence", "dominance")] == [
        0.5,
        0,
        1,
    ]
    assert angry["emo_class"] == "A"
    assert (angry["spk_id"], angry["gender"]) == ("Unknown", "Unknown")
    # Every rater chose Other: no distribution, dropped from train by default.
    assert ALL_OTHER not in train
    test3 = read_manifest(tmp_path / "manifests" / "test3.csv")
    assert list(test3) == [TEST3]


def test_dimensional_only_keeps_clips_without_votes(tmp_path):
    corpus = write_msp_podcast_layout(
        str(tmp_path / "corpus"), HAND_CLIPS, "v1.12"
    )
    prepare_msp_podcast(
        corpus, str(tmp_path / "m"), no_vote_policy="dimensional_only"
    )
    row = read_manifest(tmp_path / "m" / "train.csv")[ALL_OTHER]
    assert row["has_distribution"] == "0" and row["emo_class"] == ""
    assert all(math.isnan(v) for v in distribution(row))
    assert float(row["arousal"]) == pytest.approx(0.25)


def test_evaluation_splits_keep_clips_without_votes(tmp_path):
    clips = [dict(clip) for clip in HAND_CLIPS]
    clips[1]["split"] = "valid"  # the all-Other clip
    corpus = write_msp_podcast_layout(str(tmp_path / "corpus"), clips, "v1.12")
    prepare_msp_podcast(corpus, str(tmp_path / "m"))
    assert (
        read_manifest(tmp_path / "m" / "valid.csv")[ALL_OTHER][
            "has_distribution"
        ]
        == "0"
    )


def test_requested_splits_only(corpora, tmp_path):
    prepare_msp_podcast(
        corpora["v1.12"], str(tmp_path), splits=("train", "test3")
    )
    assert sorted(os.listdir(tmp_path)) == [
        OPTIONS_FILE,
        "test3.csv",
        "train.csv",
    ]
    with pytest.raises(DataPrepError, match="test3"):
        prepare_msp_podcast(
            corpora["v1.6"], str(tmp_path / "old"), splits=("test3",)
        )


def test_idempotent_skip_and_redo_on_new_options(
    corpora, tmp_path, monkeypatch
):
    prepare_msp_podcast(corpora["v1.12"], str(tmp_path))
    stamp = os.path.getmtime(tmp_path / "train.csv")

    def no_audio_reading(path):
        raise AssertionError("an up-to-date preparation must not read audio")

    monkeypatch.setattr(manifest, "check_audio", no_audio_reading)
    assert (
        prepare_msp_podcast(corpora["v1.12"], str(tmp_path)) == MSP_CLASS_NAMES
    )
    assert os.path.getmtime(tmp_path / "train.csv") == stamp
    with pytest.raises(AssertionError, match="must not read audio"):
        prepare_msp_podcast(
            corpora["v1.12"], str(tmp_path), include_secondary=True
        )


def test_interrupted_writing_is_redone(corpora, tmp_path, monkeypatch):
    prepare_msp_podcast(corpora["v1.12"], str(tmp_path))
    real_write_csv = msp.write_csv

    def fail_on_valid(path, rows, fieldnames):
        if str(path).endswith("valid.csv"):
            raise OSError("No space left on device")
        real_write_csv(path, rows, fieldnames)

    monkeypatch.setattr(msp, "write_csv", fail_on_valid)
    with pytest.raises(OSError):
        prepare_msp_podcast(
            corpora["v1.12"], str(tmp_path), include_secondary=True
        )
    # train.csv is new and valid.csv old: no options file may vouch for them.
    assert not os.path.exists(tmp_path / OPTIONS_FILE)
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_skip_prep_does_nothing(tmp_path):
    assert (
        prepare_msp_podcast(
            str(tmp_path / "nowhere"), str(tmp_path / "m"), skip_prep=True
        )
        == MSP_CLASS_NAMES
    )
    assert not os.path.exists(tmp_path / "m")


def test_corpus_is_fast(tmp_path):
    start = time.perf_counter()
    make_msp_podcast_corpus(str(tmp_path), "v1.12", n_per_split=8)
    assert time.perf_counter() - start < 2.0


def test_detailed_rows_of_unlisted_files_and_repeated_raters(tmp_path):
    corpus = write_msp_podcast_layout(
        str(tmp_path / "corpus"), HAND_CLIPS, "v1.12"
    )
    detailed = label_paths(corpus, "v1.12")["detailed"]
    with open(detailed, "a", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        # W1 again on the unknown-speaker clip: counted once.
        writer.writerow([UNKNOWN_SPEAKER, "W1; Sad; ; A:2; V:2; D:2;"])
        writer.writerow(
            ["MSP-PODCAST_9999_0001.wav", "W1; Sad; ; A:2; V:2; D:2;"]
        )
    prepare_msp_podcast(corpus, str(tmp_path / "m"))
    row = read_manifest(tmp_path / "m" / "train.csv")[UNKNOWN_SPEAKER]
    assert distribution(row) == pytest.approx([2 / 3, 0, 0, 0, 0, 0, 1 / 3, 0])


def _consensus_edit(old, new, clip=UNKNOWN_SPEAKER, field=None):
    def edit(paths):
        line = line_of(paths["consensus"], clip)
        edit_line(paths["consensus"], line, old, new)
        return paths["consensus"], line, field

    return edit


def _detailed_edit(old, new, field, rater="W2", clip=UNKNOWN_SPEAKER):
    def edit(paths):
        with open(paths["detailed"], newline="") as handle:
            line = next(
                number
                for number, text in enumerate(handle, start=1)
                if clip in text and rater in text
            )
        edit_line(paths["detailed"], line, old, new)
        return paths["detailed"], line, field

    return edit


def _duplicate_consensus_row(paths):
    with open(paths["consensus"], newline="") as handle:
        lines = handle.readlines()
    duplicate = next(text for text in lines if UNKNOWN_SPEAKER in text)
    lines.append(duplicate)
    with open(paths["consensus"], "w", newline="") as handle:
        handle.writelines(lines)
    return paths["consensus"], len(lines), "FileName"


def _remove_audio(paths):
    os.remove(os.path.join(paths["audio"], UNKNOWN_SPEAKER))
    return (
        paths["consensus"],
        line_of(paths["consensus"], UNKNOWN_SPEAKER),
        "FileName",
    )


BAD_ROWS_V112 = {
    "non-numeric arousal": _consensus_edit(
        ",6.000000,", ",six,", field="EmoAct"
    ),
    "valence off the scale": _consensus_edit(
        ",2.000000,", ",9.000000,", field="EmoVal"
    ),
    "unknown class code": _consensus_edit(
        ".wav,A,", ".wav,Z,", field="EmoClass"
    ),
    "unknown split name": _consensus_edit(
        ",Train", ",Training", field="Split_Set"
    ),
    "unknown gender": _consensus_edit(
        ",Unknown,Train", ",Robot,Train", field="Gender"
    ),
    "missing field": _consensus_edit(
        ",Unknown,Unknown,", ",Unknown,", field=None
    ),
    "Test3 name in train": _consensus_edit(
        "MSP-PODCAST_0002_0001.wav,",
        "MSP-PODCAST_test3_0009.wav,",
        field="FileName",
    ),
    "duplicate file name": _duplicate_consensus_row,
    "listed file without audio": _remove_audio,
    "EmoDetail without dominance": _detailed_edit(
        " D:5.000000;", "", "EmoDetail"
    ),
    "EmoDetail non-numeric arousal": _detailed_edit(
        "A:6.000000", "A:high", "EmoDetail"
    ),
    "EmoDetail unknown primary": _detailed_edit(
        "; Anger;", "; Angr;", "EmoDetail"
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS_V112))
def test_bad_rows_name_file_line_and_field(tmp_path, case):
    corpus = write_msp_podcast_layout(
        str(tmp_path / "corpus"), HAND_CLIPS, "v1.12"
    )
    bad_file, bad_line, bad_field = BAD_ROWS_V112[case](
        label_paths(corpus, "v1.12")
    )
    with pytest.raises(DataPrepError) as caught:
        prepare_msp_podcast(corpus, str(tmp_path / "m"))
    assert caught.value.file == bad_file
    assert caught.value.line == bad_line
    assert caught.value.field == bad_field
    assert str(caught.value).startswith(f"{bad_file}, line {bad_line}")
    # Nothing is written when any row is bad.
    assert not os.path.exists(tmp_path / "m") or not os.listdir(tmp_path / "m")


def _partition_edit(old, new, field, clip=UNKNOWN_SPEAKER):
    def edit(paths):
        line = line_of(paths["partitions"], clip)
        edit_line(paths["partitions"], line, old, new)
        return paths["partitions"], line, field

    return edit


def _drop_from_partitions(paths):
    line = line_of(paths["partitions"], UNKNOWN_SPEAKER)
    with open(paths["partitions"]) as handle:
        lines = handle.readlines()
    del lines[line - 1]
    with open(paths["partitions"], "w") as handle:
        handle.writelines(lines)
    return (
        paths["consensus"],
        line_of(paths["consensus"], UNKNOWN_SPEAKER),
        "FileName",
    )


BAD_ROWS_OLD = {
    ("v1.8-partitions", "unknown split in Partitions.txt"): _partition_edit(
        "Train;", "Dev;", "split"
    ),
    ("v1.8-partitions", "malformed Partitions.txt line"): _partition_edit(
        "Train;", "Train", None
    ),
    (
        "v1.8-partitions",
        "file missing from Partitions.txt",
    ): _drop_from_partitions,
    ("v1.6", "non-numeric rater valence"): _detailed_edit(
        ",2.000000,", ",low,", "EmoVal"
    ),
    ("v1.6", "unknown primary"): _detailed_edit(
        ",Anger,", ",Rage,", "EmoClass_Major"
    ),
    ("v2.0", "non-numeric rater dominance"): _detailed_edit(
        ",5.000000\r", ",?\r", "EmoDom"
    ),
}


@pytest.mark.parametrize("layout, case", sorted(BAD_ROWS_OLD))
def test_bad_rows_in_older_layouts(tmp_path, layout, case):
    corpus = write_msp_podcast_layout(
        str(tmp_path / "corpus"), HAND_CLIPS, layout
    )
    bad_file, bad_line, bad_field = BAD_ROWS_OLD[layout, case](
        label_paths(corpus, layout)
    )
    with pytest.raises(DataPrepError) as caught:
        prepare_msp_podcast(corpus, str(tmp_path / "m"))
    assert (caught.value.file, caught.value.line, caught.value.field) == (
        bad_file,
        bad_line,
        bad_field,
    )
    assert not os.path.exists(tmp_path / "m") or not os.listdir(tmp_path / "m")


def test_unrecognised_detailed_header(tmp_path):
    corpus = write_msp_podcast_layout(
        str(tmp_path / "corpus"), HAND_CLIPS, "v1.12"
    )
    detailed = label_paths(corpus, "v1.12")["detailed"]
    edit_line(detailed, 1, "EmoDetail", "Detail")
    with pytest.raises(DataPrepError) as caught:
        prepare_msp_podcast(corpus, str(tmp_path / "m"))
    assert (caught.value.file, caught.value.line) == (detailed, 1)
