"""Utilities: atomic, safe file writing.

Authors
 * emoshare_sb contributors 2026
"""
