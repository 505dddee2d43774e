"""emoshare_sb: SpeechBrain building blocks for speech emotion as perception.

Emotion shares (ComParE 2023 Emotion Share), distributions of graders' votes
and arousal/valence/dominance (MSP-Podcast), with the encoders, aggregators,
heads, losses and whole-split metrics the published systems use.

Authors
 * emoshare_sb contributors 2026
"""

from emoshare_sb.utils.logs import quiet_speechbrain_logs

__version__ = "0.1.0"

# Before any YAML is loaded: no torchvision notice, no pip freeze in log.txt.
quiet_speechbrain_logs()
