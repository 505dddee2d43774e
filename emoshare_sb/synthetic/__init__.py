"""Small generated corpora in the real layouts, and tiny random encoders.

For demos and tests; nothing here downloads anything. The command lines are
in :mod:`emoshare_sb.synthetic.cli` (``python -m emoshare_sb.synthetic
--help``). The names below are imported on first use, so that ``python -m
emoshare_sb.synthetic.<module>`` runs a module that the package has not
imported already.

Authors
 * emoshare_sb contributors 2026
"""

import importlib

_MODULES = {
    "emotion_shares": "compare23",
    "make_compare23_corpus": "compare23",
    "synthesize_clip": "compare23",
    "make_tiny_ssl_model": "encoders",
    "make_tiny_text_model": "encoders",
    "make_iemocap_corpus": "iemocap",
    "make_msp_podcast_corpus": "msp_podcast",
}

__all__ = sorted(_MODULES)


def __getattr__(name):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
    return getattr(module, name)
