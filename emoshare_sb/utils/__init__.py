"""Utilities: atomic, safe file writing; quiet SpeechBrain logs.

Authors
 * emoshare_sb contributors 2026
"""
