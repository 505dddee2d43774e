"""Data preparation for the supported corpora and the shared audio pipeline."""
