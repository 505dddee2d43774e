"""Command line: ``python -m emoshare_sb.synthetic --compare23 DIR --ssl DIR``.

Writes small generated corpora (tones, or ``--speech``: synthesised speech)
and tiny random encoders for demos and tests; ``--recipe_samples
tests/tmp/samples`` writes what the rows of ``tests/recipes/*.csv`` point at
(SpeechBrain's recipe tests).

Authors
 * emoshare_sb contributors 2026
"""

import argparse

from emoshare_sb.synthetic.compare23 import make_compare23_corpus
from emoshare_sb.synthetic.encoders import _SSL_FAMILIES, make_tiny_ssl_model
from emoshare_sb.synthetic.recipe_samples import make_recipe_samples
from emoshare_sb.synthetic.speech_corpus import make_speech_corpus


def main(argv=None):
    """Command line: ``python -m emoshare_sb.synthetic --compare23 DIR --ssl DIR``
    (or ``--speech DIR``: synthesised speech in the ComParE 2023 layout)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
    parser.add_argument(
        "--compare23", help="write a ComParE 2023 layout corpus here"
    )
    parser.add_argument(
        "--speech",
        help="write a ComParE 2023 layout corpus of synthesised speech here",
    )
    parser.add_argument("--n_train", type=int, default=200)
    parser.add_argument("--n_devel", type=int, default=60)
    parser.add_argument("--n_test", type=int, default=60)
    parser.add_argument(
        "--ssl", help="save a tiny random SSL (or Whisper) encoder here"
    )
    parser.add_argument("--family", default="hubert", choices=_SSL_FAMILIES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--recipe_samples",
        help="write the samples of tests/recipes/*.csv here "
        "(tests/tmp/samples, run from the project root)",
    )
    args = parser.parse_args(argv)
    if args.compare23:
        make_compare23_corpus(
            args.compare23,
            args.n_train,
            args.n_devel,
            args.n_test,
            seed=args.seed,
            test_labels=True,
        )
        print(f"ComParE 2023 layout corpus written to {args.compare23}")
    if args.speech:
        make_speech_corpus(
            args.speech,
            args.n_train,
            args.n_devel,
            args.n_test,
            seed=args.seed,
            test_labels=True,
        )
        print(f"Speech corpus (ComParE 2023 layout) written to {args.speech}")
    if args.ssl:
        make_tiny_ssl_model(args.ssl, family=args.family, seed=args.seed)
        print(f"Tiny random {args.family} encoder saved to {args.ssl}")
    if args.recipe_samples:
        make_recipe_samples(args.recipe_samples)
        print(f"Recipe test samples written to {args.recipe_samples}")


if __name__ == "__main__":
    main()
