"""The generator command lines: one per synthetic layout, and all in one.

``python -m emoshare_sb.synthetic --help`` lists every generator as an
option (``--compare23 DIR``, ``--msp_podcast DIR``, ``--iemocap DIR``,
``--table DIR``, ``--speech DIR``, ``--ssl DIR``, ``--recipe_samples DIR``;
several may be given at once). Each generator's module also runs on its own
with the folder as its argument, e.g. ``python -m
emoshare_sb.synthetic.msp_podcast demo/msp --layout v2.0``; ``--help``
lists its options. Each prints what it wrote and the command that runs a
recipe on it (with the folder of ``--ssl`` as the encoder when given).

Two of them are also console scripts: ``emoshare-make-tiny-ssl OUT --arch
{hubert,wav2vec2,wavlm,whisper}`` (:func:`make_tiny_ssl_main`) and
``emoshare-make-demo-corpus OUT`` (:func:`make_demo_corpus_main`, the
ComParE 2023 layout corpus ``make demo`` trains on).

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import dataclasses
import os

from emoshare_sb.synthetic.encoders import _SSL_FAMILIES

# In the printed recipe commands: the encoder folder (--ssl's when given).
ENCODER = "<encoder folder>"
# Every generator option, defined once; each generator picks its own.
OPTIONS = {
    "n_train": dict(type=int, default=200, help="training clips"),
    "n_devel": dict(type=int, default=60, help="devel clips"),
    "n_test": dict(type=int, default=60, help="test clips"),
    "layout": dict(
        default="v1.12",
        choices=("v1.12", "v2.0", "v1.8-partitions", "v1.6"),
        help="the MSP-Podcast release whose on-disk layout to write",
    ),
    "n_per_split": dict(
        type=int, default=8, help="MSP-Podcast clips per split (at least 4)"
    ),
    "utterances_per_dialog": dict(
        type=int,
        default=8,
        help="IEMOCAP utterances per dialog (3 dialogs x 5 sessions)",
    ),
    "family": dict(
        default="hubert",
        choices=_SSL_FAMILIES,
        help="encoder family of the tiny random encoder",
    ),
    "seed": dict(type=int, default=0, help="the same seed, the same data"),
}


@dataclasses.dataclass
class Generator:
    """One generator: its flag, what it writes, its options and its writer."""

    name: str
    summary: str
    options: tuple
    write: callable


def _compare23(folder, args):
    from emoshare_sb.synthetic.compare23 import make_compare23_corpus

    make_compare23_corpus(
        folder,
        args.n_train,
        args.n_devel,
        args.n_test,
        seed=args.seed,
        test_labels=True,
    )
    return (
        f"ComParE 2023 layout corpus (tones) written to {folder}\n"
        "  run: python recipes/ComParE23/train.py hparams/hubert_attn.yaml "
        f"--data_folder {folder} --ssl_source {ENCODER}"
    )


def _speech(folder, args):
    from emoshare_sb.synthetic.speech_corpus import make_speech_corpus

    make_speech_corpus(
        folder,
        args.n_train,
        args.n_devel,
        args.n_test,
        seed=args.seed,
        test_labels=True,
    )
    return f"Speech corpus (ComParE 2023 layout) written to {folder}"


def _msp_podcast(folder, args):
    from emoshare_sb.synthetic.msp_podcast import make_msp_podcast_corpus

    make_msp_podcast_corpus(
        folder, args.layout, n_per_split=args.n_per_split, seed=args.seed
    )
    return (
        f"MSP-Podcast {args.layout} layout corpus written to {folder}\n"
        "  run: python recipes/MSP-Podcast/train.py "
        f"hparams/msp_wavlm_tcgru.yaml --data_folder {folder} "
        f"--ssl_source {ENCODER} --ssl_layer 1"
    )


def _iemocap(folder, args):
    from emoshare_sb.synthetic.iemocap import make_iemocap_corpus

    make_iemocap_corpus(
        folder, utterances_per_dialog=args.utterances_per_dialog, seed=args.seed
    )
    return (
        f"IEMOCAP release layout corpus written to {folder}\n"
        "  run: python recipes/IEMOCAP/train.py "
        f"hparams/iemocap_hubert_wav2vec2_early_ecapa.yaml --data_folder "
        f"{folder} --hubert_source {ENCODER} --wav2vec2_source {ENCODER} "
        "--test_sessions [1]"
    )


def _table(folder, args):
    from emoshare_sb.synthetic.compare23 import make_compare23_corpus
    from emoshare_sb.synthetic.recipe_samples import write_table

    corpus = make_compare23_corpus(
        os.path.join(folder, "corpus"),
        args.n_train,
        args.n_devel,
        args.n_test,
        seed=args.seed,
    )
    table = os.path.join(folder, "table.csv")
    write_table(corpus, table)
    return (
        f"Table corpus written to {table} (audio in {corpus})\n"
        "  run: python recipes/ComParE23/train.py "
        f"hparams/table_regression_example.yaml --table {table} "
        "--emotions '[calm, tired]' --split_column split "
        f"--ssl_source {ENCODER}"
    )


def _ssl(folder, args):
    from emoshare_sb.synthetic.encoders import make_tiny_ssl_model

    make_tiny_ssl_model(folder, family=args.family, seed=args.seed)
    return f"Tiny random {args.family} encoder saved to {folder}"


def _recipe_samples(folder, args):
    from emoshare_sb.synthetic.recipe_samples import make_recipe_samples

    make_recipe_samples(folder)
    return f"Recipe test samples written to {folder}"


_SPLITS = ("n_train", "n_devel", "n_test", "seed")
GENERATORS = {
    g.name: g
    for g in (
        Generator(
            "compare23",
            "a ComParE 2023 Emotion Share layout corpus (tones)",
            _SPLITS,
            _compare23,
        ),
        Generator(
            "msp_podcast",
            "an MSP-Podcast corpus in a release's layout",
            ("layout", "n_per_split", "seed"),
            _msp_podcast,
        ),
        Generator(
            "iemocap",
            "an IEMOCAP corpus in the release layout (5 sessions)",
            ("utterances_per_dialog", "seed"),
            _iemocap,
        ),
        Generator(
            "table",
            "a table corpus (DIR/table.csv and its audio in DIR/corpus)",
            _SPLITS,
            _table,
        ),
        Generator(
            "speech",
            "a ComParE 2023 layout corpus of synthesised speech",
            _SPLITS,
            _speech,
        ),
        Generator(
            "ssl",
            "a tiny random SSL (or Whisper) encoder",
            ("family", "seed"),
            _ssl,
        ),
        Generator(
            "recipe_samples",
            "the samples of tests/recipes/*.csv (tests/tmp/samples, from "
            "the project root)",
            (),
            _recipe_samples,
        ),
    )
}


def _add_options(parser, names):
    for name in names:
        parser.add_argument(f"--{name}", **OPTIONS[name])


def main(argv=None):
    """``python -m emoshare_sb.synthetic``: any generators, by flag.

    Arguments
    ---------
    argv : list of str, optional
        The arguments (``sys.argv[1:]`` when None).

    Example
    -------
    >>> root = getfixture("tmpdir")
    >>> main(
    ...     ["--iemocap", str(root / "iemocap"), "--utterances_per_dialog", "1"]
    ... )
    IEMOCAP release layout corpus written to ...
    >>> sorted(p.basename for p in (root / "iemocap").listdir())
    ['Session1', 'Session2', 'Session3', 'Session4', 'Session5']
    """
    parser = argparse.ArgumentParser(
        prog="python -m emoshare_sb.synthetic",
        description="Writes small generated corpora in the real layouts, and "
        "tiny random encoders, for demos and tests (offline). Give one or "
        "more of the folder options; each generator also runs alone: "
        "python -m emoshare_sb.synthetic.<module> DIR --help.",
    )
    corpora = parser.add_argument_group("what to write (a folder each)")
    for generator in GENERATORS.values():
        corpora.add_argument(
            f"--{generator.name}",
            metavar="DIR",
            help=f"write {generator.summary}",
        )
    used = [
        n for n in OPTIONS if any(n in g.options for g in GENERATORS.values())
    ]
    _add_options(parser.add_argument_group("generator options"), used)
    args = parser.parse_args(argv)
    chosen = [g for g in GENERATORS.values() if getattr(args, g.name)]
    if not chosen:
        parser.error("nothing to write: give at least one folder option")
    for generator in chosen:
        text = generator.write(getattr(args, generator.name), args)
        print(text.replace(ENCODER, args.ssl) if args.ssl else text)


def generator_main(name, argv=None, prog=None):
    """``python -m emoshare_sb.synthetic.<module> DIR``: one generator.

    Arguments
    ---------
    name : str
        A key of :data:`GENERATORS`.
    argv : list of str, optional
        The arguments (``sys.argv[1:]`` when None).
    prog : str, optional
        The command's name in ``--help`` (default: the ``python -m`` form).

    Example
    -------
    >>> folder = str(getfixture("tmpdir") / "msp")
    >>> generator_main("msp_podcast", [folder, "--n_per_split", "4"])
    MSP-Podcast v1.12 layout corpus written to ...
    >>> sorted(os.listdir(folder))
    ['Audios', 'Labels']
    """
    generator = GENERATORS[name]
    module = {
        "ssl": "encoders",
        "speech": "speech_corpus",
        "table": "recipe_samples",
    }.get(name, name)
    parser = argparse.ArgumentParser(
        prog=prog or f"python -m emoshare_sb.synthetic.{module}",
        description=f"Writes {generator.summary}, offline.",
    )
    parser.add_argument("folder", metavar="DIR", help="where to write")
    _add_options(parser, generator.options)
    args = parser.parse_args(argv)
    print(generator.write(args.folder, args))


def make_demo_corpus_main(argv=None):
    """``emoshare-make-demo-corpus OUT``: the ComParE 2023 demo corpus.

    The corpus ``make demo`` trains on (tones whose pitch and noisiness set
    the labels), with the options of ``--compare23``.

    Arguments
    ---------
    argv : list of str, optional
        The arguments (``sys.argv[1:]`` when None).

    Example
    -------
    >>> folder = str(getfixture("tmpdir") / "demo")
    >>> make_demo_corpus_main(
    ...     [folder, "--n_train", "4", "--n_devel", "2", "--n_test", "2"]
    ... )
    ComParE 2023 layout corpus (tones) written to ...
    >>> sorted(os.listdir(folder))
    ['lab', 'wav']
    """
    generator_main("compare23", argv, prog="emoshare-make-demo-corpus")


def make_tiny_ssl_main(argv=None):
    """``emoshare-make-tiny-ssl OUT --arch ARCH``: a tiny random encoder.

    A randomly initialised HF model of the architecture, saved with
    ``save_pretrained`` (it carries no knowledge of speech: for tests and
    demos of the pipelines only).

    Arguments
    ---------
    argv : list of str, optional
        The arguments (``sys.argv[1:]`` when None).

    Example
    -------
    >>> folder = str(getfixture("tmpdir") / "tiny_wavlm")
    >>> make_tiny_ssl_main([folder, "--arch", "wavlm"])
    Tiny random wavlm encoder saved to ...
    >>> "config.json" in os.listdir(folder)
    True
    """
    parser = argparse.ArgumentParser(
        prog="emoshare-make-tiny-ssl",
        description="Writes a tiny random SSL (or Whisper) encoder, offline.",
    )
    parser.add_argument("folder", metavar="OUT", help="where to write")
    parser.add_argument(
        "--arch", **{**OPTIONS["family"], "help": "the encoder architecture"}
    )
    parser.add_argument("--seed", **OPTIONS["seed"])
    args = parser.parse_args(argv)
    options = argparse.Namespace(family=args.arch, seed=args.seed)
    print(_ssl(args.folder, options))
