"""The patterns of IEMOCAP's text files that its label and transcription readers share.

:mod:`emoshare_sb.data.iemocap` (EmoEvaluation summary lines) and
:mod:`emoshare_sb.data.iemocap_transcripts` (transcription lines) both read
utterance ids and ``[start - end]`` times.

Example
-------
>>> UTTERANCE_ID.match("Ses01F_impro01_F000")["gender"]
'F'
>>> UTTERANCE_ID.match("Ses01F_impro01_MXX0") is None  # not an utterance
True

Authors
 * emoshare_sb contributors 2026
"""

import re

# A decimal number as the release writes times and scores: 006.2901, 2.5, -1.
NUMBER = r"[-+]?\d+(?:\.\d*)?"
# Ses01F_impro01_F000, Ses01M_script01_1_M012, Ses05F_impro03a_F021 ...
# Letters, digits, '_' and '-' only: an id is part of the audio path.
UTTERANCE_ID = re.compile(
    r"^Ses(?P<session>\d{2})[FM]_[A-Za-z0-9_-]+_(?P<gender>[FM])\d+$"
)
