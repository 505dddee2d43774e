"""Command line: ``python -m emoshare_sb.synthetic --compare23 DIR --ssl DIR``.

Writes small generated corpora in the real layouts (``--compare23``,
``--msp_podcast``, ``--iemocap``, ``--table``, ``--speech``: synthesised
speech) and tiny random encoders (``--ssl``) for demos and tests;
``--recipe_samples tests/tmp/samples`` writes what the rows of
``tests/recipes/*.csv`` point at (SpeechBrain's recipe tests). ``--help``
lists every option (:mod:`emoshare_sb.synthetic.cli`).

Authors
 * emoshare_sb contributors 2026
"""

from emoshare_sb.synthetic.cli import main

if __name__ == "__main__":
    main()
