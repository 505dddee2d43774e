"""Small generated corpora in the real layouts, and tiny random encoders.

For demos and tests; nothing here downloads anything.

Authors
 * emoshare_sb contributors 2026
"""

from emoshare_sb.synthetic.compare23 import (
    emotion_shares,
    make_compare23_corpus,
    synthesize_clip,
)
from emoshare_sb.synthetic.encoders import make_tiny_ssl_model
from emoshare_sb.synthetic.iemocap import make_iemocap_corpus
from emoshare_sb.synthetic.msp_podcast import make_msp_podcast_corpus

__all__ = [
    "emotion_shares",
    "make_compare23_corpus",
    "make_iemocap_corpus",
    "make_msp_podcast_corpus",
    "make_tiny_ssl_model",
    "synthesize_clip",
]
