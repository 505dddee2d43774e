"""Aggregators, heads and losses.

Authors
 * emoshare_sb contributors 2026
"""
