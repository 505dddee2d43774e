"""The small data that the rows of ``tests/recipes/*.csv`` point at.

SpeechBrain lists every recipe YAML in ``tests/recipes/<Dataset>.csv`` with
``test_debug_flags`` that run it on a few samples (its ``tests/samples/``).
Ours are generated, not committed: tiny random encoders of each family and
small corpora in the real layouts, with the annotation manifests that data
preparation writes for them, so that a row can pass ``--skip_prep True`` and
``--train_annotation`` (and the other splits) as SpeechBrain's rows do.

``make_recipe_samples("tests/tmp/samples")`` (or ``python -m
emoshare_sb.synthetic --recipe_samples tests/tmp/samples``) writes, under the
folder::

    encoders/{hubert,wav2vec2,wavlm,whisper}/   widths 32, 16, 24, 40
    encoders/bert/                              width 20, the transcripts' words
    ComParE23/corpus/  ComParE23/annotation/{train,devel,test}.csv
    table/table.csv                             the ComParE clips as a table
    MSP-Podcast/corpus/  MSP-Podcast/annotation/{train,valid,test1,test2,test3}.csv
    IEMOCAP/IEMOCAP_full_release/  IEMOCAP/annotation/{train,valid,test}.csv
                                  (with the transcripts' text column)
    IEMOCAP/stage1/{hubert,wav2vec2,bert}/fold_1/save/averaged/encoder.ckpt
                                  what stage 1 of the two-stage IEMOCAP YAMLs
                                  writes (the tiny encoder, weights shifted)

The manifests hold absolute audio paths, so the samples are made where they
are used. ``COMPLETE_FILE`` is written last: a folder without it is an
interrupted generation and is made again.

Authors
 * emoshare_sb contributors 2026
"""

import csv
import os
import shutil

import torch

from emoshare_sb.data.compare23 import prepare_compare23
from emoshare_sb.data.iemocap import prepare_iemocap
from emoshare_sb.data.msp_podcast import prepare_msp_podcast
from emoshare_sb.synthetic.compare23 import make_compare23_corpus
from emoshare_sb.synthetic.encoders import (
    make_tiny_ssl_model,
    make_tiny_text_model,
)
from emoshare_sb.synthetic.iemocap import TRANSCRIPT_WORDS, make_iemocap_corpus
from emoshare_sb.synthetic.msp_podcast import make_msp_podcast_corpus
from emoshare_sb.utils.io import write_csv

# Distinct widths, so that a width taken from the wrong encoder fails.
ENCODER_WIDTHS = {"hubert": 32, "wav2vec2": 16, "wavlm": 24, "whisper": 40}
TEXT_ENCODER_WIDTH = 20
# The two ComParE emotions the table sample keeps, under the table's names.
TABLE_TARGETS = {"Calmness": "calm", "Tiredness": "tired"}
COMPLETE_FILE = ".complete"


def make_recipe_samples(folder):
    """Writes the encoders, corpora and manifests of the recipe CSV rows.

    Arguments
    ---------
    folder : str
        Where to write; an existing folder is replaced.

    Returns
    -------
    str
        The absolute path of ``folder``.

    Example
    -------
    Skipped here: the test suite makes the samples once per session (the
    ``recipe_samples`` fixture of ``tests/conftest.py``).

    >>> root = make_recipe_samples("tests/tmp/samples")  # doctest: +SKIP
    >>> sorted(os.listdir(root))  # doctest: +SKIP
    ['.complete', 'ComParE23', 'IEMOCAP', 'MSP-Podcast', 'encoders', 'table']
    """
    folder = os.path.abspath(folder)
    shutil.rmtree(folder, ignore_errors=True)
    for family, width in ENCODER_WIDTHS.items():
        make_tiny_ssl_model(
            os.path.join(folder, "encoders", family), family, hidden_size=width
        )
    make_tiny_text_model(
        os.path.join(folder, "encoders", "bert"),
        TRANSCRIPT_WORDS,
        hidden_size=TEXT_ENCODER_WIDTH,
    )

    compare23 = make_compare23_corpus(
        os.path.join(folder, "ComParE23", "corpus"),
        n_train=8,
        n_devel=6,
        n_test=4,
        max_duration=2.0,
        seed=5,
    )
    prepare_compare23(
        compare23, os.path.join(folder, "ComParE23", "annotation")
    )
    write_table(compare23, os.path.join(folder, "table", "table.csv"))

    msp = make_msp_podcast_corpus(
        os.path.join(folder, "MSP-Podcast", "corpus"),
        "v1.12",
        n_per_split=6,
        seed=3,  # train and valid hold clips of several consensus classes
    )
    prepare_msp_podcast(msp, os.path.join(folder, "MSP-Podcast", "annotation"))

    iemocap = make_iemocap_corpus(
        os.path.join(folder, "IEMOCAP", "IEMOCAP_full_release"),
        utterances_per_dialog=2,
        seed=1,
    )
    prepare_iemocap(
        iemocap,
        os.path.join(folder, "IEMOCAP", "annotation"),
        test_session=1,
        transcripts=True,  # for the text rows; the speech rows ignore it
    )
    for family in ("hubert", "wav2vec2", "bert"):
        write_stage1_upstream(
            os.path.join(folder, "encoders", family),
            os.path.join(folder, "IEMOCAP", "stage1", family),
            test_session=1,
        )
    with open(os.path.join(folder, COMPLETE_FILE), "w") as handle:
        handle.write("complete\n")
    return folder


def write_table(compare23_corpus, path):
    """Writes the labelled ComParE sample clips as a table for ``prepare_from_table``.

    One row per clip of the corpus' train and devel splits (its test labels
    are withheld): its audio path relative to the table, a ``speaker`` (one
    per four clips), a ``split`` (train clips stay train, devel clips are
    shared between devel and test) and two targets (:data:`TABLE_TARGETS`).

    Arguments
    ---------
    compare23_corpus : str
        A corpus written by :func:`make_compare23_corpus`.
    path : str
        The table to write.

    Example
    -------
    >>> tmpdir = getfixture("tmpdir")
    >>> corpus = make_compare23_corpus(str(tmpdir / "corpus"), 4, 2, 2)
    >>> write_table(corpus, str(tmpdir / "table" / "table.csv"))
    >>> print(open(tmpdir / "table" / "table.csv").read())  # doctest: +ELLIPSIS
    path,speaker,split,calm,tired
    ../corpus/wav/00001.wav,spk0,train,...
    ../corpus/wav/00005.wav,spk1,devel,...
    ../corpus/wav/00006.wav,spk1,test,...
    """
    rows = []
    for label_split in ("train", "devel"):
        label_file = os.path.join(compare23_corpus, "lab", f"{label_split}.csv")
        with open(label_file) as handle:
            for index, row in enumerate(csv.DictReader(handle)):
                audio = os.path.join(compare23_corpus, "wav", row["filename"])
                rows.append(
                    {
                        "path": os.path.relpath(audio, os.path.dirname(path)),
                        "speaker": f"spk{len(rows) // 4}",
                        "split": label_split
                        if label_split == "train"
                        else ("devel", "test")[index % 2],
                        **{
                            column: row[emotion]
                            for emotion, column in TABLE_TARGETS.items()
                        },
                    }
                )
    write_csv(path, rows, ["path", "speaker", "split", *TABLE_TARGETS.values()])


def write_stage1_upstream(source, stage1_folder, test_session, shift=0.01):
    """Writes a stand-in for stage 1's averaged upstream of one fold.

    Stage 1 of Morais et al.'s protocol (``hparams/iemocap_exp3_w2v2_mean.yaml``
    ...; ``hparams/iemocap_bert_mean.yaml`` for BERT) writes
    ``fold_<k>/save/averaged/encoder.ckpt``; the stage-2 rows read this one:
    the ``source`` encoder's weights, each shifted by ``shift`` so that
    loading them is visible.

    Arguments
    ---------
    source : str
        A local encoder folder: a speech model, or a text model (with a
        tokenizer, loaded as :class:`~emoshare_sb.lobes.text.TranscriptEncoder`).
    stage1_folder : str
        The stand-in stage-1 output folder.
    test_session : int
        The fold.
    shift : float
        Added to every floating-point tensor.

    Returns
    -------
    str
        The checkpoint's path.
    """
    from emoshare_sb.lobes.ssl import SSLEncoder
    from emoshare_sb.lobes.text import TranscriptEncoder

    is_text = os.path.isfile(os.path.join(source, "tokenizer_config.json"))
    encoder_class = TranscriptEncoder if is_text else SSLEncoder
    encoder = encoder_class(source, save_path=source, freeze=False)
    state = {
        key: value + shift if value.is_floating_point() else value
        for key, value in encoder.state_dict().items()
    }
    path = os.path.join(
        stage1_folder, f"fold_{test_session}", "save", "averaged"
    )
    os.makedirs(path, exist_ok=True)
    torch.save(state, os.path.join(path, "encoder.ckpt"))
    return os.path.join(path, "encoder.ckpt")


if __name__ == "__main__":
    from emoshare_sb.synthetic.cli import generator_main

    generator_main("recipe_samples")
