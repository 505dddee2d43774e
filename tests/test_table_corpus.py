"""New corpora from a table: manifests, splits, validation, vote distributions, training."""

import csv
import io
import json
import os

import numpy as np
import pandas as pd
import pytest
import ruamel.yaml
import soundfile

from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.table import prepare_from_table, votes_to_distributions
from emoshare_sb.synthetic.compare23 import emotion_shares, synthesize_clip
from tests.conftest import REPO, run_recipe

TARGETS = ["calm", "tense"]


def write_table(folder, n_clips=24, n_speakers=8, seed=0, extra=None):
    """Clips whose targets follow their pitch and noisiness, as the synthetic corpora.

    ``extra`` maps a column name to a function of the clip index.
    """
    rng = np.random.default_rng(seed)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(n_clips):
        latent = rng.uniform(0, 1, size=2)
        speaker = f"spk{index % n_speakers}"
        path = f"audio/{speaker}_{index:03d}.wav"
        clip = synthesize_clip(latent, rng.uniform(1.2, 2.5), rng)
        soundfile.write(folder / path, clip, 16000, subtype="PCM_16")
        shares = emotion_shares(latent)
        row = {
            "path": path,
            "speaker": speaker,
            "calm": f"{shares[2]:.4f}",
            "tense": f"{shares[0]:.4f}",
        }
        for column, value in (extra or {}).items():
            row[column] = value(index)
        rows.append(row)
    table = folder / "table.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return table


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_table(tmp_path_factory.mktemp("table_corpus"))


def test_random_split_is_speaker_disjoint_and_in_compare_format(
    corpus, tmp_path
):
    assert (
        prepare_from_table(
            corpus,
            tmp_path,
            target_columns=TARGETS,
            speaker_column="speaker",
            seed=1,
        )
        == TARGETS
    )
    table = {r["path"]: r for r in read_csv(corpus)}
    speakers = {}
    for split in ("train", "devel", "test"):
        with open(tmp_path / f"{split}.csv", newline="") as handle:
            assert next(csv.reader(handle)) == [
                "ID",
                "duration",
                "wav",
                *TARGETS,
            ]
        rows = read_csv(tmp_path / f"{split}.csv")
        assert rows, split
        for row in rows:
            assert row["wav"] == os.path.join(str(corpus.parent), row["ID"])
            assert 1.2 <= float(row["duration"]) <= 2.5
            assert [row[t] for t in TARGETS] == [
                table[row["ID"]][t] for t in TARGETS
            ]
        speakers[split] = {table[r["ID"]]["speaker"] for r in rows}
    assert (
        sum(len(s) for s in speakers.values()) == 8
    )  # no speaker in two splits
    assert sum(len(read_csv(tmp_path / f"{s}.csv")) for s in speakers) == 24
    assert len(read_csv(tmp_path / "train.csv")) >= 16  # about 80 %


def test_split_column_and_unlabelled_test(tmp_path):
    names = {0: "Train", 1: "dev", 2: "test"}
    table = write_table(
        tmp_path, n_clips=9, extra={"fold": lambda i: names[i % 3]}
    )
    text = table.read_text().splitlines()
    # Test clips without labels: every target empty.
    text = [
        ",".join(
            f if k not in (2, 3) or not line.endswith(",test") else ""
            for k, f in enumerate(line.split(","))
        )
        for line in text
    ]
    table.write_text("\n".join(text) + "\n")
    prepare_from_table(
        table, tmp_path / "save", target_columns=TARGETS, split_column="fold"
    )
    assert [
        len(read_csv(tmp_path / "save" / f"{s}.csv"))
        for s in ("train", "devel", "test")
    ] == [3, 3, 3]
    assert all(
        r["calm"] == "nan" for r in read_csv(tmp_path / "save" / "test.csv")
    )


def test_preparation_is_skipped_when_nothing_changed(corpus, tmp_path):
    prepare_from_table(corpus, tmp_path, target_columns=TARGETS)
    stamp = os.path.getmtime(tmp_path / "train.csv")
    prepare_from_table(corpus, tmp_path, target_columns=TARGETS)
    assert os.path.getmtime(tmp_path / "train.csv") == stamp
    prepare_from_table(corpus, tmp_path, target_columns=TARGETS, seed=5)
    assert (
        json.loads((tmp_path / "prepare_options.json").read_text())["seed"] == 5
    )


@pytest.mark.parametrize(
    "edit, kwargs, message",
    [
        (
            None,
            {"target_columns": ["calm", "valence"]},
            "line 1: column 'valence' is not in the header",
        ),
        (
            ("audio/spk1_001.wav", "audio/missing.wav"),
            {},
            "line 3, field 'path': audio file",
        ),
        ((",spk0,0.", ",spk0,x."), {}, "line 2, field 'calm': value 'x."),
        (
            ("spk2_002.wav,spk2,", "spk2_002.wav,spk2,,"),
            {},
            "line 4: expected 4 fields",
        ),
        (
            ("audio/spk3_003.wav", "audio/spk2_002.wav"),
            {},
            "line 5, field 'path': duplicate audio file",
        ),
        (None, {"value_range": [0.0, 0.5]}, "is outside [0.0, 0.5]"),
        (
            None,
            {"split_column": "speaker"},
            "field 'speaker': unknown split 'spk0'",
        ),
        (
            None,
            {"split_ratios": (0.5, 0.5, 0.0)},
            "split_ratios must be three positive",
        ),
        (None, {"target_columns": ["ID"]}, "target columns must be distinct"),
    ],
)
def test_bad_tables_name_the_line_and_field(tmp_path, edit, kwargs, message):
    table = write_table(tmp_path, n_clips=6, n_speakers=6)
    if edit:
        text = table.read_text()
        assert edit[0] in text
        table.write_text(text.replace(edit[0], edit[1], 1))
    arguments = {"target_columns": TARGETS, **kwargs}
    with pytest.raises(DataPrepError) as caught:
        prepare_from_table(table, tmp_path / "save", **arguments)
    assert message in str(caught.value)
    assert not (
        tmp_path / "save" / "train.csv"
    ).exists()  # nothing half-written


def test_unreadable_audio_and_partial_labels(tmp_path):
    table = write_table(tmp_path, n_clips=6, n_speakers=6)
    (tmp_path / "audio" / "spk0_000.wav").write_bytes(b"not audio")
    with pytest.raises(
        DataPrepError,
        match=r"line 2, field 'path': audio file '.*spk0_000.wav': cannot read "
        r"audio header \(Format not recognised",
    ):
        prepare_from_table(table, tmp_path / "a", target_columns=TARGETS)
    table = write_table(tmp_path / "b", n_clips=6, n_speakers=6)
    lines = table.read_text().splitlines()
    lines[3] = ",".join(lines[3].split(",")[:3] + [""])
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataPrepError, match=r"line 4, field 'tense': missing value"
    ):
        prepare_from_table(
            table, tmp_path / "b" / "save", target_columns=TARGETS
        )


def test_votes_to_distributions(tmp_path):
    votes = tmp_path / "votes.csv"
    votes.write_text(
        "file,rater,label\n"
        "a.wav,r1,happy\na.wav,r2,sad\na.wav,r3,happy\na.wav,r4,neutral\n"
        "b.wav,r1,sad\n"
    )
    distributions = votes_to_distributions(
        str(votes), classes=["happy", "sad", "neutral", "angry"]
    )
    assert list(distributions.columns) == [
        "file",
        "happy",
        "sad",
        "neutral",
        "angry",
        "num_raters",
    ]
    assert distributions.iloc[0][
        ["happy", "sad", "neutral", "angry"]
    ].tolist() == [0.5, 0.25, 0.25, 0.0]
    assert (
        distributions.iloc[1]["sad"] == 1.0
        and distributions.iloc[1]["num_raters"] == 1
    )
    # Merged with an audio table, the class columns are ready as targets.
    audio = pd.DataFrame({"file": ["b.wav", "a.wav"], "speaker": ["x", "y"]})
    merged = audio.merge(distributions, on="file")
    assert merged.loc[merged["file"] == "a.wav", "happy"].item() == 0.5

    votes.write_text("file,rater,label\na.wav,r1,happy\na.wav,r1,sad\n")
    with pytest.raises(
        DataPrepError, match="line 3, field 'rater': rater 'r1' voted twice"
    ):
        votes_to_distributions(str(votes))
    votes.write_text("file,rater,label\na.wav,r1,happy\nb.wav,r2,bored\n")
    with pytest.raises(
        DataPrepError,
        match="line 3, field 'label': label 'bored' is not one of",
    ):
        votes_to_distributions(str(votes), classes=["happy"])
    with pytest.raises(
        DataPrepError, match="column 'label' is not in the header"
    ):
        votes_to_distributions(pd.DataFrame({"file": ["a"], "rater": ["r"]}))


def _tree(path):
    """Top-level YAML nodes as text, comments dropped."""
    yaml = ruamel.yaml.YAML()
    tree = yaml.load(open(path))
    nodes = {}
    for key, value in tree.items():
        stream = io.StringIO()
        yaml.dump({key: value}, stream)
        nodes[key] = "\n".join(
            line.split("  #")[0].rstrip()
            for line in stream.getvalue().splitlines()
        )
    return nodes


def test_example_yaml_is_the_compare_system_outside_the_data_section():
    example = _tree(REPO / "hparams" / "table_regression_example.yaml")
    recipe = _tree(REPO / "hparams" / "hubert_attn.yaml")
    data_keys = {
        "data_folder",
        "audio_folder",
        "output_folder",
        "prepare_data",
        "emotions",
    }
    for key in set(recipe) - data_keys:
        assert example.get(key) == recipe[key], (
            f"'{key}' differs from hubert_attn.yaml"
        )
    assert "table_regression_example" not in example["output_folder"]


def test_the_compare_recipe_trains_on_a_generated_table(
    corpus, tiny_hubert, tmp_path
):
    output = tmp_path / "results"
    run_recipe(
        "recipes/ComParE23/train.py",
        "hparams/table_regression_example.yaml",
        "--table",
        corpus,
        "--emotions",
        "[calm, tense]",
        "--speaker_column",
        "speaker",
        "--ssl_source",
        tiny_hubert,
        "--output_folder",
        output,
        "--number_of_epochs",
        2,
        "--batch_size",
        4,
        "--num_averaged_checkpoints",
        2,
        "--device",
        "cpu",
    )
    results = json.loads((output / "results.json").read_text())
    assert set(results["devel"]["spearman"]) == {"calm", "tense", "mean"}
    assert results["test"] is not None  # the table labels every split
    devel = read_csv(output / "predictions" / "devel.csv")
    assert list(devel[0]) == ["filename", "calm", "tense"]
    assert {r["filename"] for r in devel} == {
        r["ID"] for r in read_csv(output / "save" / "devel.csv")
    }
