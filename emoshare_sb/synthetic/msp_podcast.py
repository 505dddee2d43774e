"""Small generated MSP-Podcast corpora in the real releases' layouts.

Nothing here downloads anything. :func:`make_msp_podcast_corpus` writes a
corpus in one of the on-disk layouts described in ``shared/FORMATS.md`` and in
:mod:`emoshare_sb.data.msp_podcast`:

* ``"v1.12"``: ``Audios/``, ``Labels/labels_consensus.csv`` with a
  ``Split_Set`` column (``Development``), ``labels_detailed.csv`` with
  ``EmoDetail`` strings; Test3 rows in the consensus file with empty labels.
* ``"v2.0"``: as v1.12, with the ``FileName,WorkerID,EmoClass_Major,...``
  detailed format; Test3 audio in ``Audios/`` but listed in no label file.
* ``"v1.8-partitions"``: ``Audio/``, ``labels/labels_concensus.csv`` without
  ``Split_Set``, ``Partitions.txt`` (``Validation``, Test3 listed only there),
  ``EmoDetail`` strings.
* ``"v1.6"``: ``Audio/``, ``label/labels_concensus.csv``, ``Partition.txt``,
  the ``FileName,Workers,EmoClass_Major,...`` detailed format, no Test3.

Each labelled split holds a tie among primary votes (consensus ``X``), a clip
whose raters all chose Other (consensus ``O``, no class vote) and a clip of an
``Unknown`` speaker and gender; rater votes elsewhere follow a hidden class
most of the time. The audio of a clip is rendered by
:func:`emoshare_sb.synthetic.synthesize_clip` from a latent point set by the
hidden class (noisiness) and arousal (pitch), so a model can learn both.
:func:`write_msp_podcast_layout` writes hand-made clips in any layout (tests
use it for clips with known votes).

Authors
 * emoshare_sb contributors 2026
"""

import csv
import os

import numpy as np
import soundfile

from emoshare_sb.data.audio import SAMPLE_RATE
from emoshare_sb.data.msp_podcast import MSP_CLASS_CODES, MSP_CLASS_NAMES
from emoshare_sb.synthetic.compare23 import synthesize_clip

MSP_LAYOUTS = {
    "v1.12": {
        "audio": "Audios",
        "labels": "Labels",
        "consensus": "labels_consensus.csv",
        "detailed": "EmoDetail",
        "partitions": None,
        "valid": "Development",
        "test3": "consensus",
    },
    "v2.0": {
        "audio": "Audios",
        "labels": "Labels",
        "consensus": "labels_consensus.csv",
        "detailed": "WorkerID",
        "partitions": None,
        "valid": "Development",
        "test3": "audio_only",
    },
    "v1.8-partitions": {
        "audio": "Audio",
        "labels": "labels",
        "consensus": "labels_concensus.csv",
        "detailed": "EmoDetail",
        "partitions": "Partitions.txt",
        "valid": "Validation",
        "test3": "partitions",
    },
    "v1.6": {
        "audio": "Audio",
        "labels": "label",
        "consensus": "labels_concensus.csv",
        "detailed": "Workers",
        "partitions": "Partition.txt",
        "valid": "Validation",
        "test3": None,
    },
}
_SPLIT_SPELLING = {
    "train": "Train",
    "test1": "Test1",
    "test2": "Test2",
    "test3": "Test3",
}

# Per class: (noisiness, arousal, valence, dominance), each in [0, 1].
_CLASS_PROFILES = {
    "A": (0.9, 0.85, 0.15, 0.85),
    "S": (0.5, 0.15, 0.20, 0.25),
    "H": (0.2, 0.75, 0.90, 0.65),
    "U": (0.35, 0.90, 0.65, 0.50),
    "F": (0.75, 0.70, 0.15, 0.20),
    "D": (0.65, 0.50, 0.20, 0.60),
    "C": (0.55, 0.40, 0.30, 0.75),
    "N": (0.05, 0.35, 0.50, 0.45),
}
_EXTRA_SECONDARY = [
    "Confused",
    "Amused",
    "Frustrated",
    "Concerned",
    "Other-Curious",
]
_OTHER_PRIMARY = ["Other-Concerned", "Other-Bored", "Other"]


def make_msp_podcast_corpus(
    folder,
    layout="v1.12",
    n_per_split=8,
    seed=0,
    min_duration=0.5,
    max_duration=2.0,
):
    """Writes a small MSP-Podcast corpus in the layout of a given release.

    Arguments
    ---------
    folder : str
        The corpus root to create.
    layout : str
        ``"v1.12"``, ``"v2.0"``, ``"v1.8-partitions"`` or ``"v1.6"`` (see the
        module docstring).
    n_per_split : int
        Clips per split (at least 4, so that every special clip fits).
    seed : int
        Random seed; the same seed gives the same corpus.
    min_duration, max_duration : float
        Clip durations are uniform in this range (seconds).

    Returns
    -------
    str
        ``folder``.

    Example
    -------
    >>> root = make_msp_podcast_corpus(
    ...     str(getfixture("tmpdir")), "v1.6", n_per_split=4
    ... )
    >>> sorted(os.listdir(root))
    ['Audio', 'Partition.txt', 'label']
    >>> len(os.listdir(os.path.join(root, "Audio")))
    16
    """
    if n_per_split < 4:
        raise ValueError(f"n_per_split must be at least 4, got {n_per_split}")
    settings = _layout_settings(layout)
    rng = np.random.default_rng(seed)
    splits = ["train", "valid", "test1", "test2"]
    if settings["test3"] is not None:
        splits.append("test3")
    clips = []
    for split_index, split in enumerate(splits):
        for index in range(n_per_split):
            clips.append(
                _random_clip(
                    rng, split, split_index, index, min_duration, max_duration
                )
            )
    return write_msp_podcast_layout(folder, clips, layout, seed=seed)


def write_msp_podcast_layout(folder, clips, layout="v1.12", seed=0):
    """Writes given clips (labels and audio) in the layout of a given release.

    Arguments
    ---------
    folder : str
        The corpus root to create.
    clips : list of dict
        One per clip, with the keys ``name`` (file name), ``split`` (``train``,
        ``valid``, ``test1``, ``test2`` or ``test3``), ``emo_class`` (consensus
        code), ``dimensions`` (consensus ``(act, val, dom)`` on 1..7),
        ``spk_id``, ``gender``, ``ratings`` (a list of
        ``(rater, primary, secondaries, (a, v, d))`` with emotion names as
        raters write them) and, optionally, ``latent`` (two numbers in [0, 1]
        for :func:`~emoshare_sb.synthetic.synthesize_clip`) and ``duration``
        (seconds). Test3 clips need only ``name`` and ``split``.
    layout : str
        A key of :data:`MSP_LAYOUTS`.
    seed : int
        Seed of the audio rendering.

    Returns
    -------
    str
        ``folder``.

    Example
    -------
    >>> clip = {
    ...     "name": "MSP-PODCAST_0001_0001.wav",
    ...     "split": "train",
    ...     "emo_class": "N",
    ...     "dimensions": (4, 4, 4),
    ...     "spk_id": "1",
    ...     "gender": "Male",
    ...     "ratings": [("W1", "Neutral", ["Confused"], (4, 4, 4))],
    ... }
    >>> root = write_msp_podcast_layout(str(getfixture("tmpdir")), [clip])
    >>> print(
    ...     open(os.path.join(root, "Labels", "labels_detailed.csv"))
    ...     .read()
    ...     .strip()
    ... )
    "FileName","EmoDetail"
    "MSP-PODCAST_0001_0001.wav","W1; Neutral; Confused; A:4.000000; V:4.000000; D:4.000000;"
    """
    settings = _layout_settings(layout)
    rng = np.random.default_rng(seed)
    audio_folder = os.path.join(folder, settings["audio"])
    label_folder = os.path.join(folder, settings["labels"])
    os.makedirs(audio_folder, exist_ok=True)
    os.makedirs(label_folder, exist_ok=True)

    for clip in clips:
        latent = np.asarray(clip.get("latent", (0.5, 0.5)), dtype=float)
        signal = synthesize_clip(latent, clip.get("duration", 0.5), rng)
        soundfile.write(
            os.path.join(audio_folder, clip["name"]),
            signal,
            SAMPLE_RATE,
            subtype="PCM_16",
        )

    with_split_column = settings["partitions"] is None
    consensus_header = [
        "FileName",
        "EmoClass",
        "EmoAct",
        "EmoVal",
        "EmoDom",
        "SpkrID",
        "Gender",
    ]
    if with_split_column:
        consensus_header.append("Split_Set")
    consensus_rows, detailed_rows, partition_lines = [], [], []
    for clip in clips:
        split_name = (
            settings["valid"]
            if clip["split"] == "valid"
            else _SPLIT_SPELLING[clip["split"]]
        )
        unlabelled = clip["split"] == "test3"
        listed_in_consensus = not unlabelled or settings["test3"] == "consensus"
        listed_in_partitions = settings["partitions"] is not None and (
            not unlabelled or settings["test3"] == "partitions"
        )
        if listed_in_consensus:
            if unlabelled:
                row = [clip["name"], "", "", "", "", "Unknown", "Unknown"]
            else:
                row = [clip["name"], clip["emo_class"]]
                row += [_format_rating(v) for v in clip["dimensions"]]
                row += [clip["spk_id"], clip["gender"]]
            if with_split_column:
                row.append(split_name)
            consensus_rows.append(row)
        if listed_in_partitions:
            partition_lines.append(f"{split_name}; {clip['name']}\n")
        for rater, primary, secondaries, (act, val, dom) in clip.get(
            "ratings", []
        ):
            if settings["detailed"] == "EmoDetail":
                detail = (
                    f"{rater}; {primary}; {','.join(secondaries)}; A:{act:.6f}; "
                    f"V:{val:.6f}; D:{dom:.6f};"
                )
                detailed_rows.append([clip["name"], detail])
            else:
                detailed_rows.append(
                    [clip["name"], rater, primary, ",".join(secondaries)]
                    + [_format_rating(v) for v in (act, val, dom)]
                )

    _write_rows(
        os.path.join(label_folder, settings["consensus"]),
        consensus_header,
        consensus_rows,
    )
    if settings["detailed"] == "EmoDetail":
        detailed_header = ["FileName", "EmoDetail"]
    else:
        detailed_header = [
            "FileName",
            settings["detailed"],
            "EmoClass_Major",
            "EmoClass_Second",
        ]
        detailed_header += ["EmoAct", "EmoVal", "EmoDom"]
    # The real EmoDetail files quote every field.
    quoting = (
        csv.QUOTE_ALL
        if settings["detailed"] == "EmoDetail"
        else csv.QUOTE_MINIMAL
    )
    _write_rows(
        os.path.join(label_folder, "labels_detailed.csv"),
        detailed_header,
        detailed_rows,
        quoting,
    )
    if settings["partitions"] is not None:
        with open(os.path.join(folder, settings["partitions"]), "w") as handle:
            handle.writelines(partition_lines)
    return folder


def consensus_class(primary_codes):
    """The consensus code of primary votes by plurality: ``X`` on a tie.

    Arguments
    ---------
    primary_codes : list of str
        One class code per rater, ``"O"`` for Other.

    Returns
    -------
    str
        The most frequent code (``"O"`` when Other wins), or ``"X"`` when the
        top count is shared.

    Example
    -------
    >>> (
    ...     consensus_class(["H", "H", "N"]),
    ...     consensus_class(["H", "N"]),
    ...     consensus_class(["O"]),
    ... )
    ('H', 'X', 'O')
    """
    codes, counts = np.unique(primary_codes, return_counts=True)
    winners = codes[counts == counts.max()]
    return str(winners[0]) if len(winners) == 1 else "X"


def _layout_settings(layout):
    if layout not in MSP_LAYOUTS:
        raise ValueError(
            f"layout must be one of {sorted(MSP_LAYOUTS)}, got '{layout}'"
        )
    return MSP_LAYOUTS[layout]


def _random_clip(rng, split, split_index, index, min_duration, max_duration):
    """One clip with a hidden class; special rating patterns for the first ones."""
    hidden = MSP_CLASS_CODES[int(rng.integers(len(MSP_CLASS_CODES)))]
    noisiness, arousal, valence, dominance = _CLASS_PROFILES[hidden]
    arousal = float(np.clip(arousal + rng.normal(0, 0.08), 0, 1))
    # Pitch follows arousal, noisiness the class: both are audible.
    latent = np.clip(
        [0.1 + 0.8 * arousal, noisiness + rng.normal(0, 0.04)], 0, 1
    )
    clip = {
        "split": split,
        "latent": latent,
        "duration": float(rng.uniform(min_duration, max_duration)),
    }
    if split == "test3":
        clip["name"] = f"MSP-PODCAST_test3_{index + 1:04d}.wav"
        return clip
    speaker = 100 * split_index + index % 3 + 1
    clip["name"] = f"MSP-PODCAST_{speaker:04d}_{index + 1:04d}.wav"
    if index == 2:
        clip["spk_id"], clip["gender"] = "Unknown", "Unknown"
    else:
        clip["spk_id"] = str(speaker)
        clip["gender"] = "Female" if speaker % 2 else "Male"

    if index == 0:  # a tie: two raters for the hidden class, two for another
        rival = MSP_CLASS_CODES[
            (MSP_CLASS_CODES.index(hidden) + 1) % len(MSP_CLASS_CODES)
        ]
        primaries = [hidden, hidden, rival, rival, "O"]
    elif index == 1:  # every rater chose Other: no class vote
        primaries = ["O"] * int(rng.integers(2, 5))
    else:
        primaries = []
        for _ in range(int(rng.integers(3, 8))):
            draw = rng.uniform()
            if draw < 0.65:
                primaries.append(hidden)
            elif draw < 0.85:
                primaries.append(
                    MSP_CLASS_CODES[int(rng.integers(len(MSP_CLASS_CODES)))]
                )
            else:
                primaries.append("O")
    ratings = []
    for rater, code in enumerate(primaries):
        if code == "O":
            primary = _OTHER_PRIMARY[int(rng.integers(len(_OTHER_PRIMARY)))]
        else:
            primary = MSP_CLASS_NAMES[MSP_CLASS_CODES.index(code)]
        pool = MSP_CLASS_NAMES + _EXTRA_SECONDARY
        secondaries = [
            pool[i]
            for i in rng.choice(len(pool), rng.integers(0, 3), replace=False)
        ]
        # Raters answer on the integer 1..7 scale around the clip's profile.
        scores = tuple(
            float(np.clip(np.rint(1 + 6 * value + rng.normal(0, 0.6)), 1, 7))
            for value in (arousal, valence, dominance)
        )
        ratings.append(
            (
                f"WORKER{split_index:03d}{index:03d}{rater:02d}",
                primary,
                secondaries,
                scores,
            )
        )
    clip["ratings"] = ratings
    clip["emo_class"] = consensus_class(primaries)
    clip["dimensions"] = tuple(np.mean([r[3] for r in ratings], axis=0))
    return clip


def _format_rating(value):
    return f"{float(value):.6f}"


def _write_rows(path, header, rows, quoting=csv.QUOTE_MINIMAL):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, quoting=quoting)
        writer.writerow(header)
        writer.writerows(rows)


if __name__ == "__main__":
    from emoshare_sb.synthetic.cli import generator_main

    generator_main("msp_podcast")
