"""Analysis of encoders and results: layer saliency.

Authors
 * emoshare_sb contributors 2026
"""
