"""Training: the shared Brain, checkpoints, batching, the feature cache and hparams.

Authors
 * emoshare_sb contributors 2026
"""
