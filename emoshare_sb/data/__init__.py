"""Data preparation for the supported corpora and the shared audio pipeline.

Authors
 * emoshare_sb contributors 2026
"""
