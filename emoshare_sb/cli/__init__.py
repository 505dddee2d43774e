"""Command lines: ``emoshare-predict`` (score audio files with a trained or
exported model), ``emoshare-export`` (write a self-contained model folder) and
``emoshare-report`` (results table and plots of a trained experiment).

Each module has a ``main(argv=None)`` that returns the exit status: 0 when
everything worked, 1 when some inputs failed (each reported with its reason),
2 for usage errors.

Authors
 * emoshare_sb contributors 2026
"""
