"""Inference: pretrained interfaces, sliding windows and model export.

``EmotionShareRegressor`` (emotion shares, A/V/D) and
``VoteDistributionRecognizer`` (vote distributions) load a finished run or an
exported folder, SpeechBrain ``Pretrained`` style.

Authors
 * emoshare_sb contributors 2026
"""

from emoshare_sb.inference.interfaces import (
    EmotionShareRegressor,
    VoteDistributionRecognizer,
    load_model,
)

__all__ = ["EmotionShareRegressor", "VoteDistributionRecognizer", "load_model"]
