"""A small generated corpus in the layout of the public IEMOCAP release.

Nothing here downloads anything. :func:`make_iemocap_corpus` writes what
:mod:`emoshare_sb.data.iemocap` reads, as the owners ship it: five sessions,
each with improvised and scripted dialogs whose utterances alternate between
the session's female and male actor; one EmoEvaluation file per dialog with
the ``%`` header, a tab-separated summary line per utterance and the
evaluators' ``C-`` (categorical) and ``A-`` (attribute) lines; the
``Categorical/`` sub-folder and a macOS ``._`` file that must not be read as
label files; ``sentences/wav/<dialog>/<utterance>.wav`` at 16 kHz; one
``dialog/transcriptions/<dialog>.txt`` per dialog, a line
``<utterance> [start-end]: <text>`` per utterance plus one unlabelled
``<dialog>_MXX0`` turn (not an utterance, to be skipped).

Every code occurs in every session with 20 or more utterances (``neu hap
exc ang sad`` most often; ``fru sur fea dis oth xxx`` too). The audio of a
4-class utterance is rendered by :func:`emoshare_sb.synthetic.synthesize_clip`
from a point set by its emotion (pitch and noisiness; ``exc`` close to
``hap``), so a model can learn the classes; other codes get random points.
A transcript is 3 to 8 lowercase words of :data:`TRANSCRIPT_WORDS` and a
full stop, drawn from a generator of its own (so that the audio and labels
do not depend on it); half the transcripts of a 4-class utterance hold one
word of its emotion's list, so a text model can learn a little.

Authors
 * emoshare_sb contributors 2026
"""

import os

import numpy as np
import soundfile

from emoshare_sb.data.audio import SAMPLE_RATE
from emoshare_sb.synthetic.compare23 import synthesize_clip

# The session's code mix: 14 of 20 in the 4-class set (exc merged into hap).
CODE_MIX = (
    "neu",
    "hap",
    "ang",
    "sad",
    "exc",
    "fru",
    "neu",
    "ang",
    "sad",
    "hap",
    "xxx",
    "exc",
    "sur",
    "neu",
    "fea",
    "sad",
    "dis",
    "ang",
    "oth",
    "exc",
)
# (pitch, noisiness) of each learnable emotion, for synthesize_clip.
EMOTION_POINTS = {
    "neu": (0.35, 0.10),
    "hap": (0.80, 0.15),
    "exc": (0.85, 0.20),
    "ang": (0.90, 0.85),
    "sad": (0.10, 0.60),
}
# How the evaluators' lines name each code.
EVALUATOR_NAMES = {
    "neu": "Neutral",
    "hap": "Happiness",
    "exc": "Excited",
    "ang": "Anger",
    "sad": "Sadness",
    "fru": "Frustration",
    "sur": "Surprise",
    "fea": "Fear",
    "dis": "Disgust",
    "oth": "Other",
}
EVALUATORS = ("C-E1", "C-E2", "C-F1")
HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
# The words of the transcripts: fillers for every utterance and a few words
# per learnable emotion (exc shares hap's), one of which half the
# transcripts of that emotion hold.
FILLER_WORDS = (
    "i",
    "you",
    "we",
    "it",
    "the",
    "a",
    "to",
    "and",
    "is",
    "was",
    "that",
    "this",
    "what",
    "know",
    "think",
    "go",
    "here",
    "now",
    "just",
    "really",
    "there",
    "do",
    "not",
    "me",
)
EMOTION_WORDS = {
    "neu": ("okay", "fine", "maybe", "sure"),
    "hap": ("great", "love", "wonderful", "fun"),
    "exc": ("great", "love", "wonderful", "fun"),
    "ang": ("hate", "stop", "stupid", "never"),
    "sad": ("sorry", "miss", "lost", "alone"),
}
# Every word a transcript can hold (the full stop is not a word).
TRANSCRIPT_WORDS = list(
    dict.fromkeys(
        list(FILLER_WORDS)
        + [word for words in EMOTION_WORDS.values() for word in words]
    )
)
EMOTION_WORD_CHANCE = 0.5
UNLABELLED_TURN_TEXT = "i know."


def dialogs_of(session):
    """The dialogs written for a session: improvised and scripted, both actors wearing markers.

    Arguments
    ---------
    session : int
        1 to 5.

    Returns
    -------
    list of str
        Dialog names, e.g. ``Ses01F_impro01``.

    Example
    -------
    >>> dialogs_of(2)
    ['Ses02F_impro01', 'Ses02M_impro02', 'Ses02F_script01_1']
    """
    prefix = f"Ses{session:02d}"
    return [f"{prefix}F_impro01", f"{prefix}M_impro02", f"{prefix}F_script01_1"]


def make_iemocap_corpus(
    folder, utterances_per_dialog=8, seed=0, min_duration=0.6, max_duration=1.4
):
    """Writes a corpus in the IEMOCAP release layout.

    Arguments
    ---------
    folder : str
        The release root to create (it will hold ``Session1`` ... ``Session5``).
    utterances_per_dialog : int
        Utterances of each of the 3 dialogs of a session, alternating
        female and male turns.
    seed : int
        Random seed; the same seed gives the same corpus.
    min_duration, max_duration : float
        Utterance durations are uniform in this range (seconds).

    Returns
    -------
    str
        ``folder``.

    Example
    -------
    >>> root = make_iemocap_corpus(
    ...     str(getfixture("tmpdir") / "iemocap"), utterances_per_dialog=2
    ... )
    >>> sorted(os.listdir(root))
    ['Session1', 'Session2', 'Session3', 'Session4', 'Session5']
    >>> sorted(
    ...     os.listdir(
    ...         os.path.join(
    ...             root, "Session1", "sentences", "wav", "Ses01F_impro01"
    ...         )
    ...     )
    ... )
    ['Ses01F_impro01_F000.wav', 'Ses01F_impro01_M000.wav']
    """
    rng = np.random.default_rng(seed)
    for session in range(1, 6):
        dialogs = dialogs_of(session)
        total = len(dialogs) * utterances_per_dialog
        codes = list(rng.permutation(np.resize(np.array(CODE_MIX), total)))
        emo_folder = os.path.join(
            folder, f"Session{session}", "dialog", "EmoEvaluation"
        )
        os.makedirs(os.path.join(emo_folder, "Categorical"), exist_ok=True)
        text_folder = os.path.join(
            folder, f"Session{session}", "dialog", "transcriptions"
        )
        os.makedirs(text_folder, exist_ok=True)
        for index, dialog in enumerate(dialogs):
            dialog_codes = codes[
                index * utterances_per_dialog : (index + 1)
                * utterances_per_dialog
            ]
            lines, turns = _write_dialog(
                folder,
                session,
                dialog,
                dialog_codes,
                rng,
                min_duration,
                max_duration,
                (seed, session, index),
            )
            with open(
                os.path.join(emo_folder, f"{dialog}.txt"), "w", encoding="utf-8"
            ) as handle:
                handle.write("\n".join(lines) + "\n")
            with open(
                os.path.join(text_folder, f"{dialog}.txt"),
                "w",
                encoding="utf-8",
            ) as handle:
                handle.write("\n".join(turns) + "\n")
            # What the release also holds next to the label files: per-evaluator
            # files in sub-folders, and AppleDouble copies in some archives.
            with open(
                os.path.join(emo_folder, "Categorical", f"{dialog}_e1_cat.txt"),
                "w",
            ) as handle:
                handle.write(f"{dialog}_F000 :Neutral state; ()\n")
        with open(
            os.path.join(emo_folder, f"._{dialogs[0]}.txt"), "wb"
        ) as handle:
            handle.write(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    return folder


def make_transcript(code, rng):
    """The text of one utterance: 3 to 8 words and a full stop.

    Arguments
    ---------
    code : str
        The utterance's emotion code.
    rng : numpy.random.Generator
        The utterance's own generator.

    Returns
    -------
    str
        Lowercase words of :data:`TRANSCRIPT_WORDS` separated by single
        spaces, ending with ``.``; for ``neu hap exc ang sad``, one word of
        the emotion's list half of the time.

    Example
    -------
    >>> text = make_transcript("ang", np.random.default_rng([0, 1, 2, 3]))
    >>> text.endswith(".") and 3 <= len(text[:-1].split(" ")) <= 8
    True
    >>> all(word in TRANSCRIPT_WORDS for word in text[:-1].split(" "))
    True
    """
    words = [str(w) for w in rng.choice(FILLER_WORDS, size=rng.integers(3, 9))]
    if code in EMOTION_WORDS and rng.random() < EMOTION_WORD_CHANCE:
        words[int(rng.integers(len(words)))] = str(
            rng.choice(EMOTION_WORDS[code])
        )
    return " ".join(words) + "."


def _write_dialog(
    folder, session, dialog, codes, rng, min_duration, max_duration, key
):
    """Writes a dialog's wavs; returns its EmoEvaluation and transcription lines.

    ``key`` (seed, session, dialog index) seeds each transcript's own
    generator, with the utterance's position, so that ``rng`` draws what it
    drew before transcripts were written.
    """
    wav_folder = os.path.join(
        folder, f"Session{session}", "sentences", "wav", dialog
    )
    os.makedirs(wav_folder, exist_ok=True)
    lines = [HEADER, ""]
    turns = {"F": 0, "M": 0}
    transcript = []
    time = float(rng.uniform(2.0, 8.0))
    for position, code in enumerate(codes):
        gender = "FM"[position % 2]
        utterance = f"{dialog}_{gender}{turns[gender]:03d}"
        turns[gender] += 1
        duration = float(rng.uniform(min_duration, max_duration))
        point = EMOTION_POINTS.get(code)
        point = rng.uniform(0, 1, size=2) if point is None else np.array(point)
        point = np.clip(point + rng.normal(0, 0.03, size=2), 0, 1)
        clip = synthesize_clip(point, duration, rng)
        soundfile.write(
            os.path.join(wav_folder, f"{utterance}.wav"),
            clip,
            SAMPLE_RATE,
            subtype="PCM_16",
        )
        valence, activation, dominance = rng.uniform(1, 5, size=3)
        lines.append(
            f"[{time:.4f} - {time + duration:.4f}]\t{utterance}\t{code}\t"
            f"[{valence:.4f}, {activation:.4f}, {dominance:.4f}]"
        )
        lines.extend(_evaluator_lines(code, rng))
        lines.append("")
        text = make_transcript(code, np.random.default_rng([*key, position]))
        transcript.append(
            f"{utterance} [{time:08.4f}-{time + duration:08.4f}]: {text}"
        )
        if position == 0:  # a turn that is not a labelled utterance
            end = time + duration
            transcript.append(
                f"{dialog}_MXX0 [{end:08.4f}-{end + 0.1:08.4f}]: "
                f"{UNLABELLED_TURN_TEXT}"
            )
        time += duration + float(rng.uniform(0.2, 1.5))
    return lines, transcript


def _evaluator_lines(code, rng):
    """The evaluators' categorical and attribute lines of one utterance."""
    if code == "xxx":  # no agreement: every evaluator names another emotion
        names = rng.choice(
            list(EVALUATOR_NAMES.values()), size=len(EVALUATORS), replace=False
        )
    else:
        names = [EVALUATOR_NAMES[code]] * len(EVALUATORS)
    lines = [
        f"{rater}:\t{name};\t()"
        for rater, name in zip(EVALUATORS, names, strict=True)
    ]
    for rater in ("A-E1", "A-E2"):
        val, act, dom = rng.integers(1, 6, size=3)
        lines.append(f"{rater}:\tval {val}; act {act}; dom  {dom};\t()")
    return lines


if __name__ == "__main__":
    from emoshare_sb.synthetic.cli import generator_main

    generator_main("iemocap")
