"""IEMOCAP: data preparation on a generated corpus in the release layout, and
the leave-one-session-out recipe running all 5 folds in ``--debug``.

Preparation: codes and the happy + excited merge, counting as the 5,531 of
the real corpus are counted, speakers, disjoint folds, SUPERB's seeded 80/20
split, skipping when up to date, and errors that name file, line and field.
Recipe: every fold's outputs, results.json's mean and std over folds, and a
fold run alone (``--test_sessions [3]``) giving the same predictions as in
the 5-fold run (each fold starts from fresh modules).
"""

import collections
import csv
import json
import os
import re
import shutil

import numpy as np
import pytest
import soundfile

from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.iemocap import IEMOCAP_CODES, prepare_iemocap, speaker_of
from emoshare_sb.synthetic.encoders import make_tiny_ssl_model
from emoshare_sb.synthetic.iemocap import make_iemocap_corpus
from tests.conftest import run_recipe, tensorboard_scalars

RECIPE = "recipes/IEMOCAP/train.py"
HPARAMS = "hparams/iemocap_hubert_wav2vec2_early_ecapa.yaml"
FOUR_CLASS_CODES = {"neu", "hap", "exc", "ang", "sad"}
SUMMARY = re.compile(r"^\[[^\]]+\]\t(\S+)\t(\S+)\t\[")


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def summary_lines(root):
    """``{utterance: code}`` read independently of the preparation code."""
    codes = {}
    for session in range(1, 6):
        folder = os.path.join(
            root, f"Session{session}", "dialog", "EmoEvaluation"
        )
        for name in os.listdir(folder):
            if name.endswith(".txt") and not name.startswith("."):
                with open(os.path.join(folder, name)) as handle:
                    for line in handle:
                        match = SUMMARY.match(line)
                        if match:
                            codes[match[1]] = match[2]
    return codes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """24 utterances per session (3 dialogs x 8), every code in every session."""
    root = tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release"
    return make_iemocap_corpus(str(root), utterances_per_dialog=8, seed=1)


@pytest.fixture(scope="module")
def folds(corpus, tmp_path_factory):
    """The manifests of the 5 folds: ``{session: {split: rows}}``."""
    root = tmp_path_factory.mktemp("folds")
    manifests = {}
    for session in range(1, 6):
        save = root / f"fold_{session}"
        prepare_iemocap(corpus, str(save), test_session=session)
        manifests[session] = {
            s: read_rows(save / f"{s}.csv") for s in ("train", "valid", "test")
        }
    return manifests


# Data preparation ------------------------------------------------------------


def test_every_code_occurs_and_four_class_counting_merges_excited(
    corpus, folds
):
    codes = summary_lines(corpus)
    assert set(codes.values()) == set(IEMOCAP_CODES)
    rows = [row for split in folds[1].values() for row in split]
    # As the real corpus' 5,531: the neu, hap, exc, ang, sad utterances, exc as hap.
    expected = collections.Counter(
        "hap" if code == "exc" else code
        for code in codes.values()
        if code in FOUR_CLASS_CODES
    )
    assert collections.Counter(row["emo"] for row in rows) == expected
    assert {row["ID"] for row in rows} == {
        u for u, c in codes.items() if c in FOUR_CLASS_CODES
    }
    excited = [row for row in rows if codes[row["ID"]] == "exc"]
    assert excited and all(row["emo"] == "hap" for row in excited)
    assert list(rows[0]) == ["ID", "duration", "wav", "spk_id", "emo"]


def test_without_merge_excited_is_left_out(corpus, tmp_path):
    prepare_iemocap(corpus, str(tmp_path), test_session=2, merge={})
    rows = [
        row
        for s in ("train", "valid", "test")
        for row in read_rows(tmp_path / f"{s}.csv")
    ]
    codes = summary_lines(corpus)
    assert len(rows) == sum(
        c in {"neu", "hap", "ang", "sad"} for c in codes.values()
    )
    assert not any(codes[row["ID"]] == "exc" for row in rows)


def test_speaker_is_session_plus_gender_of_the_last_id_part(folds):
    rows = [row for split in folds[1].values() for row in split]
    assert {row["spk_id"] for row in rows} == {
        f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"
    }
    for row in rows:
        assert row["spk_id"] == row["ID"][:5] + row["ID"].rsplit("_", 1)[1][0]
    # The dialog's letter (who wore the markers) is not the speaker's.
    assert speaker_of("Ses01F_impro01_M000") == "Ses01M"
    assert any(
        row["ID"].startswith("Ses01F") and row["spk_id"] == "Ses01M"
        for row in rows
    )


def test_folds_hold_out_one_session_and_cover_every_utterance_once(folds):
    tested = []
    for session, splits in folds.items():
        held_out = {f"Ses0{session}F", f"Ses0{session}M"}
        assert {row["spk_id"] for row in splits["test"]} == held_out
        for split in ("train", "valid"):
            assert not {row["spk_id"] for row in splits[split]} & held_out
        assert len({row["spk_id"] for row in splits["train"]}) == 8
        ids = [
            {row["ID"] for row in splits[s]} for s in ("train", "valid", "test")
        ]
        assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
        tested += [row["ID"] for row in splits["test"]]
    assert (
        len(tested)
        == len(set(tested))
        == len({row["ID"] for split in folds[1].values() for row in split})
    )


def test_train_valid_split_is_superbs_80_20_and_reproducible(
    corpus, folds, tmp_path
):
    train, valid = folds[4]["train"], folds[4]["valid"]
    pool = len(train) + len(valid)
    assert len(train) == int(0.8 * pool) and len(valid) == pool - int(
        0.8 * pool
    )
    prepare_iemocap(corpus, str(tmp_path / "again"), test_session=4)
    assert read_rows(tmp_path / "again" / "valid.csv") == valid
    prepare_iemocap(corpus, str(tmp_path / "other"), test_session=4, seed=7)
    other = {row["ID"] for row in read_rows(tmp_path / "other" / "valid.csv")}
    assert other != {row["ID"] for row in valid} and len(other) == len(valid)


def test_preparation_is_skipped_when_up_to_date_and_redone_otherwise(
    corpus, tmp_path
):
    counts = prepare_iemocap(corpus, str(tmp_path), test_session=1)
    manifest = tmp_path / "train.csv"
    stamp = os.stat(manifest).st_mtime_ns
    assert prepare_iemocap(corpus, str(tmp_path), test_session=1) == counts
    assert os.stat(manifest).st_mtime_ns == stamp
    prepare_iemocap(corpus, str(tmp_path), test_session=2)
    assert {row["spk_id"] for row in read_rows(tmp_path / "test.csv")} == {
        "Ses02F",
        "Ses02M",
    }
    assert (
        prepare_iemocap(corpus, str(tmp_path), test_session=2, skip_prep=True)
        is None
    )


def test_release_root_may_be_the_folder_holding_it(corpus, tmp_path):
    counts = prepare_iemocap(
        os.path.dirname(corpus), str(tmp_path), test_session=5
    )
    assert sum(counts.values()) == sum(
        c in FOUR_CLASS_CODES for c in summary_lines(corpus).values()
    )


def test_audio_depends_on_the_emotion(folds):
    """Noisiness (zero-crossing rate) separates the classes as the generator sets it."""
    rate = collections.defaultdict(list)
    for row in folds[1]["train"]:
        samples, _ = soundfile.read(row["wav"])
        rate[row["emo"]].append(np.mean(np.diff(np.sign(samples)) != 0))
    mean = {emo: np.mean(values) for emo, values in rate.items()}
    assert mean["ang"] > mean["sad"] > mean["hap"] > mean["neu"]


# Errors name the file, line and field ----------------------------------------


@pytest.fixture
def small_corpus(tmp_path):
    return make_iemocap_corpus(
        str(tmp_path / "corpus"), utterances_per_dialog=2, seed=2
    )


def label_file(root, dialog):
    session = int(dialog[3:5])
    return os.path.join(
        root, f"Session{session}", "dialog", "EmoEvaluation", f"{dialog}.txt"
    )


def edit_lines(path, edit):
    with open(path) as handle:
        lines = handle.read().split("\n")
    with open(path, "w") as handle:
        handle.write("\n".join(edit(lines)))


def first_summary(lines):
    return next(i for i, line in enumerate(lines) if line.startswith("["))


def prepare_error(corpus, tmp_path):
    with pytest.raises(DataPrepError) as error:
        prepare_iemocap(corpus, str(tmp_path / "save"), test_session=1)
    assert not os.path.exists(tmp_path / "save" / "prepare_options.json")
    return error.value


def test_malformed_summary_line(small_corpus, tmp_path):
    path = label_file(small_corpus, "Ses02M_impro02")

    def drop_dominance(lines):
        i = first_summary(lines)
        lines[i] = lines[i].rsplit(",", 1)[0] + "]"
        return lines

    edit_lines(path, drop_dominance)
    error = prepare_error(small_corpus, tmp_path)
    assert (error.file, error.line) == (path, 3)
    assert "malformed summary line" in str(error) and str(error).startswith(
        f"{path}, line 3"
    )


def test_unknown_code(small_corpus, tmp_path):
    path = label_file(small_corpus, "Ses03F_script01_1")

    def rename_code(lines):
        i = first_summary(lines)
        fields = lines[i].split("\t")
        lines[i] = "\t".join([fields[0], fields[1], "joy", fields[3]])
        return lines

    edit_lines(path, rename_code)
    error = prepare_error(small_corpus, tmp_path)
    assert (error.file, error.line, error.field) == (path, 3, "emotion")
    assert "unknown emotion code 'joy'" in str(error)


def test_duplicate_utterance(small_corpus, tmp_path):
    source = label_file(small_corpus, "Ses01F_impro01")
    target = label_file(small_corpus, "Ses01M_impro02")
    with open(source) as handle:
        copied = next(line for line in handle if line.startswith("["))
    with open(target, "a") as handle:
        handle.write("\n" + copied)
    with open(target) as handle:
        line = len(handle.read().split("\n")) - 1
    error = prepare_error(small_corpus, tmp_path)
    assert (error.file, error.line, error.field) == (target, line, "utterance")
    assert f"(first seen in {source}, line 3)" in str(error)


def test_missing_audio(small_corpus, tmp_path):
    codes = summary_lines(small_corpus)
    utterance = sorted(u for u, c in codes.items() if c in FOUR_CLASS_CODES)[0]
    dialog = utterance.rsplit("_", 1)[0]
    session = f"Session{int(utterance[3:5])}"
    wav = os.path.join(
        small_corpus, session, "sentences", "wav", dialog, f"{utterance}.wav"
    )
    os.remove(wav)
    with open(label_file(small_corpus, dialog)) as handle:
        line = 1 + next(
            i for i, text in enumerate(handle) if f"\t{utterance}\t" in text
        )
    error = prepare_error(small_corpus, tmp_path)
    assert (error.file, error.line, error.field) == (
        label_file(small_corpus, dialog),
        line,
        "utterance",
    )
    assert f"audio file '{wav}' does not exist" in str(error)


def test_missing_session(small_corpus, tmp_path):
    shutil.rmtree(os.path.join(small_corpus, "Session5"))
    error = prepare_error(small_corpus, tmp_path)
    assert "Session5" in str(error) and error.file == small_corpus


# Transcripts (a text column, for a text model) ------------------------------

TURN = re.compile(r"^(\S+) \[[^\]]+\]: (.*)$")


def transcript_path(root, dialog):
    session = int(dialog[3:5])
    return os.path.join(
        root, f"Session{session}", "dialog", "transcriptions", f"{dialog}.txt"
    )


def transcript_lines(root, dialog):
    """``{utterance: (line number, text)}`` read independently of the preparation."""
    turns = {}
    with open(transcript_path(root, dialog)) as handle:
        for number, line in enumerate(handle, 1):
            match = TURN.match(line.rstrip("\n"))
            if match:
                turns[match[1]] = (number, match[2])
    return turns


def four_class_utterance(root):
    codes = summary_lines(root)
    return sorted(u for u, c in codes.items() if c in FOUR_CLASS_CODES)[0]


def test_transcripts_give_a_text_column(corpus, tmp_path):
    counts = prepare_iemocap(
        corpus, str(tmp_path), test_session=1, transcripts=True
    )
    rows = {
        row["ID"]: row
        for s in ("train", "valid", "test")
        for row in read_rows(tmp_path / f"{s}.csv")
    }
    assert len(rows) == sum(counts.values())
    with open(tmp_path / "test.csv") as handle:
        assert handle.readline().strip() == "ID,duration,wav,spk_id,emo,text"
    utterance = four_class_utterance(corpus)
    dialog = utterance.rsplit("_", 1)[0]
    turns = transcript_lines(corpus, dialog)
    assert rows[utterance]["text"] == turns[utterance][1]
    assert f"{dialog}_MXX0" in turns and f"{dialog}_MXX0" not in rows
    for row in rows.values():
        text = row["text"]
        assert text.endswith(".") and text == text.strip()
        assert 3 <= len(text[:-1].split(" ")) <= 8


def test_without_transcripts_the_manifests_are_unchanged(
    corpus, folds, tmp_path
):
    prepare_iemocap(corpus, str(tmp_path), test_session=3, transcripts=False)
    for split in ("train", "valid", "test"):
        with open(tmp_path / f"{split}.csv") as handle:
            assert handle.readline().strip() == "ID,duration,wav,spk_id,emo"
        assert read_rows(tmp_path / f"{split}.csv") == folds[3][split]


def test_changing_transcripts_prepares_again(small_corpus, tmp_path):
    manifest = tmp_path / "train.csv"
    prepare_iemocap(small_corpus, str(tmp_path), test_session=1)
    assert "text" not in read_rows(manifest)[0]
    prepare_iemocap(
        small_corpus, str(tmp_path), test_session=1, transcripts=True
    )
    assert "text" in read_rows(manifest)[0]
    stamp = os.stat(manifest).st_mtime_ns
    prepare_iemocap(
        small_corpus, str(tmp_path), test_session=1, transcripts=True
    )
    assert os.stat(manifest).st_mtime_ns == stamp
    # An edited transcriptions file is read again.
    utterance = read_rows(manifest)[0]["ID"]
    path = transcript_path(small_corpus, utterance.rsplit("_", 1)[0])
    edit_lines(
        path,
        lambda lines: [
            f"{utterance} [001.0000-002.0000]: a new text."
            if line.startswith(f"{utterance} ")
            else line
            for line in lines
        ],
    )
    prepare_iemocap(
        small_corpus, str(tmp_path), test_session=1, transcripts=True
    )
    assert read_rows(manifest)[0]["text"] == "a new text."
    prepare_iemocap(small_corpus, str(tmp_path), test_session=1)
    assert "text" not in read_rows(manifest)[0]


def transcripts_error(corpus, tmp_path):
    with pytest.raises(DataPrepError) as error:
        prepare_iemocap(
            corpus, str(tmp_path / "save"), test_session=1, transcripts=True
        )
    assert not os.path.exists(tmp_path / "save" / "prepare_options.json")
    return error.value


def test_utterance_without_transcript_line(small_corpus, tmp_path):
    utterance = four_class_utterance(small_corpus)
    path = transcript_path(small_corpus, utterance.rsplit("_", 1)[0])
    edit_lines(
        path,
        lambda lines: [
            line for line in lines if not line.startswith(f"{utterance} ")
        ],
    )
    error = transcripts_error(small_corpus, tmp_path)
    assert error.file == path and str(error).startswith(path)
    assert f"utterance '{utterance}' has no transcript line" in str(error)
    # Without transcripts, the transcriptions are not read.
    prepare_iemocap(small_corpus, str(tmp_path / "audio"), test_session=1)


def test_missing_transcriptions_file(small_corpus, tmp_path):
    path = transcript_path(small_corpus, "Ses04M_impro02")
    os.remove(path)
    error = transcripts_error(small_corpus, tmp_path)
    assert error.file == path and "does not exist" in str(error)


def test_malformed_transcript_line(small_corpus, tmp_path):
    path = transcript_path(small_corpus, "Ses02M_impro02")

    def drop_times(lines):  # line 3: the second utterance (line 2 is MXX0)
        lines[2] = lines[2].split(" [", 1)[0] + ": no times."
        return lines

    edit_lines(path, drop_times)
    error = transcripts_error(small_corpus, tmp_path)
    assert (error.file, error.line) == (path, 3)
    assert str(error).startswith(f"{path}, line 3: malformed transcript line")


def test_unlabelled_and_other_lines_are_skipped(small_corpus, tmp_path):
    path = transcript_path(small_corpus, "Ses02M_impro02")
    edit_lines(
        path,
        lambda lines: ["", "some other text: [1-2]", "Ses02M_impro02_FXX1 no"]
        + lines,
    )
    counts = prepare_iemocap(
        small_corpus, str(tmp_path), test_session=1, transcripts=True
    )
    assert sum(counts.values()) == sum(
        c in FOUR_CLASS_CODES for c in summary_lines(small_corpus).values()
    )


def test_speechbrain_variable_in_a_transcript(small_corpus, tmp_path):
    path = transcript_path(small_corpus, "Ses03F_script01_1")

    def add_variable(lines):
        lines[0] = lines[0].rsplit(": ", 1)[0] + ": pay $price now."
        return lines

    edit_lines(path, add_variable)
    error = transcripts_error(small_corpus, tmp_path)
    assert (error.file, error.line) == (path, 1)
    assert "the transcript 'pay $price now.' holds '$price'" in str(error)


def test_duplicate_transcript_line(small_corpus, tmp_path):
    source = transcript_path(small_corpus, "Ses05F_impro01")
    target = transcript_path(small_corpus, "Ses05M_impro02")
    with open(source) as handle:
        copied = handle.readline()
    with open(target, "a") as handle:
        handle.write(copied)
    with open(target) as handle:
        line = len(handle.read().split("\n")) - 1
    error = transcripts_error(small_corpus, tmp_path)
    assert (error.file, error.line, error.field) == (target, line, "utterance")
    assert f"(first seen in {source}, line 1)" in str(error)


# The recipe: 5 folds in --debug ------------------------------------------------


@pytest.fixture(scope="module")
def tiny_encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_encoders")
    return (
        make_tiny_ssl_model(str(root / "hubert"), "hubert", hidden_size=32),
        make_tiny_ssl_model(str(root / "wav2vec2"), "wav2vec2", hidden_size=16),
    )


def run_iemocap(corpus, encoders, output, *overrides, debug=True):
    """Runs the recipe on tiny encoders and a small ECAPA-TDNN, one thread."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        return run_recipe(
            RECIPE,
            HPARAMS,
            "--data_folder",
            corpus,
            "--output_folder",
            output,
            "--hubert_source",
            encoders[0],
            "--wav2vec2_source",
            encoders[1],
            "--ecapa_channels",
            "[16, 16, 16, 16, 48]",
            "--ecapa_embedding_size",
            8,
            "--pretrained_path",
            os.path.join(output, "pretrained"),
            "--num_workers",
            0,
            "--device",
            "cpu",
            *(["--debug"] if debug else []),
            *overrides,
        )


@pytest.fixture(scope="module")
def cross_validation(corpus, tiny_encoders, tmp_path_factory):
    output = tmp_path_factory.mktemp("cv") / "results"
    run_iemocap(corpus, tiny_encoders, str(output), "--use_tensorboard", True)
    return output


def test_tensorboard_holds_every_folds_epochs(cross_validation):
    for session in (1, 5):
        scalars = tensorboard_scalars(
            cross_validation / f"fold_{session}" / "tensorboard"
        )
        for tag in ("loss/train", "loss/valid", "wa/valid", "ua/valid"):
            assert [step for step, _ in scalars[tag]] == [1, 2], tag


def test_debug_run_trains_and_evaluates_every_fold(cross_validation):
    for session in range(1, 6):
        fold = cross_validation / f"fold_{session}"
        results = json.loads((fold / "results.json").read_text())
        assert results["test_speakers"] == [
            f"Ses0{session}F",
            f"Ses0{session}M",
        ]
        for variant in ("averaged", "best"):
            for split in ("valid", "test"):
                scores = results[variant][split]
                assert 0.0 <= scores["wa"] <= 1.0 and 0.0 <= scores["ua"] <= 1.0
                assert (
                    np.sum(scores["confusion"]) == scores["num_utterances"] > 0
                )
        subfolders = {"averaged": "", "best": "best"}
        for variant, subfolder in subfolders.items():
            rows = read_rows(fold / "predictions" / subfolder / "test.csv")
            assert list(rows[0]) == [
                "ID",
                "spk_id",
                "emo",
                "prediction",
                "neu",
                "hap",
                "ang",
                "sad",
            ]
            assert {row["spk_id"] for row in rows} <= {
                f"Ses0{session}F",
                f"Ses0{session}M",
            }
            correct = np.mean([row["emo"] == row["prediction"] for row in rows])
            assert correct == pytest.approx(results[variant]["test"]["wa"])
        # Upstreams and downstream averaged, each fold in its own folder.
        assert {"model.ckpt", "encoder.ckpt"} <= set(
            os.listdir(fold / "save" / "averaged")
        )
        assert (fold / "train_log.txt").is_file()
        assert (
            "test_session: " + str(session)
            in (fold / "hyperparams.yaml").read_text()
        )


def test_results_give_wa_and_ua_per_fold_with_mean_and_std(cross_validation):
    summary = json.loads((cross_validation / "results.json").read_text())
    assert summary["folds"] == [1, 2, 3, 4, 5]
    for variant in ("averaged", "best"):
        per_fold = summary[variant]["per_fold"]
        assert sorted(per_fold) == ["1", "2", "3", "4", "5"]
        for metric in ("wa", "ua"):
            values = [per_fold[k][metric] for k in sorted(per_fold)]
            assert summary[variant]["mean"][metric] == pytest.approx(
                np.mean(values)
            )
            assert summary[variant]["std"][metric] == pytest.approx(
                np.std(values, ddof=1)
            )
        assert summary[variant]["pooled"]["num_utterances"] == sum(
            f["num_utterances"] for f in per_fold.values()
        )
    log = (cross_validation / "log.txt").read_text()
    assert (
        "leave-one-session-out, 5 fold(s)" in log
        and "\nmean " in log
        and "\npooled " in log
    )


def test_one_fold_alone_matches_the_same_fold_of_the_full_run(
    corpus, tiny_encoders, cross_validation, tmp_path
):
    output = tmp_path / "fold3_only"
    run_iemocap(corpus, tiny_encoders, str(output), "--test_sessions", "[3]")
    assert sorted(
        p.name for p in output.iterdir() if p.name.startswith("fold_")
    ) == ["fold_3"]
    assert json.loads((output / "results.json").read_text())["folds"] == [3]
    # Fresh modules and the seed set again per fold: nothing leaks between folds.
    alone = read_rows(output / "fold_3" / "predictions" / "test.csv")
    in_full_run = read_rows(
        cross_validation / "fold_3" / "predictions" / "test.csv"
    )
    assert alone == in_full_run


def test_a_short_run_learns_the_classes(corpus, tiny_encoders, tmp_path):
    """Frozen tiny encoders, 10 epochs on fold 1: well above the majority class."""
    output = tmp_path / "learning"
    run_iemocap(
        corpus,
        tiny_encoders,
        str(output),
        "--test_sessions",
        "[1]",
        "--freeze_ssl",
        True,
        "--lr",
        0.01,
        "--number_of_epochs",
        10,
        "--batch_size",
        8,
        debug=False,
    )
    train_log = (output / "fold_1" / "train_log.txt").read_text()
    valid_wa = [float(v) for v in re.findall(r"valid wa: (\S+),", train_log)]
    assert len(valid_wa) == 10 and max(valid_wa) >= 0.5
    summary = json.loads((output / "results.json").read_text())
    assert summary["averaged"]["per_fold"]["1"]["ua"] >= 0.4
