"""Whole-split metrics: regression (Spearman, CCC, Pearson) and classification.

Authors
 * emoshare_sb contributors 2026
"""
