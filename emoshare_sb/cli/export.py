"""``emoshare-export``: write a self-contained model folder from a trained experiment.

::

    emoshare-export results/ComParE23/hubert_attn/1986 models/compare23_hubert

The folder (see :func:`emoshare_sb.inference.interfaces.export_model`) loads offline
with ``emoshare_sb.inference.interfaces.load_model(<folder>)`` (an
``EmotionShareRegressor`` or a ``VoteDistributionRecognizer``, as the run
was) or ``emoshare-predict --model <folder>``.

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import sys


def main(argv=None):
    """Command line ``emoshare-export``.

    Arguments
    ---------
    argv : list of str, optional
        Arguments; None reads ``sys.argv``.

    Returns
    -------
    int
        0 on success, 2 for usage errors (not an experiment, folder exists,
        target inside the experiment, code outside the allow-list).
    """
    parser = argparse.ArgumentParser(
        prog="emoshare-export",
        description="Write a self-contained, offline-loadable model folder from a "
        "trained experiment (the recipe's --output_folder).",
    )
    parser.add_argument(
        "experiment_folder", help="the recipe's --output_folder"
    )
    parser.add_argument("export_folder", help="the folder to create")
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="default sliding window in seconds (default: the experiment's eval_window, "
        "else 8); 0 scores whole clips",
    )
    parser.add_argument(
        "--hop", type=float, default=None, help="hop between windows, seconds"
    )
    parser.add_argument(
        "--encoder_source",
        default=None,
        help="read the SSL encoder from here instead of the experiment's ssl_source",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing folder (never the experiment, a folder "
        "inside it or one that contains it)",
    )
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help="copy model definitions that name code outside the allow-list "
        "(emoshare_sb, torch.nn, speechbrain classes); the export then "
        "loads only with --trust-code",
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also write model.onnx (encoder up to the layer read, pooling, head) "
        "for emoshare-predict --backend onnxruntime",
    )
    parser.add_argument(
        "--quantize",
        action="store_true",
        help="with --onnx, also write model.int8.onnx (ONNX Runtime dynamic int8)",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)

    from emoshare_sb.inference.interfaces import export_model

    try:
        folder = export_model(
            args.experiment_folder,
            args.export_folder,
            args.window,
            args.hop,
            args.encoder_source,
            args.overwrite,
            args.trust_code,
        )
        if args.onnx:
            write_onnx(folder, args.quantize, args.trust_code)
    except (ValueError, FileExistsError, OSError) as err:
        print(f"emoshare-export: error: {err}", file=sys.stderr)
        return 2
    print(folder)
    return 0


def write_onnx(folder, quantize=False, trust_code=False):
    """Writes ``model.onnx`` (and ``model.int8.onnx``) into an export folder.

    Arguments
    ---------
    folder : str
        An export written by ``export_model``.
    quantize : bool
        Also write the ONNX Runtime int8 model.
    trust_code : bool
        Load the export whatever its YAML names.
    """
    from emoshare_sb.inference.interfaces import load_model
    from emoshare_sb.inference.onnx import export_onnx, quantize_onnx

    export_onnx(load_model(folder, trust_code=trust_code), folder)
    if quantize:
        quantize_onnx(folder)


if __name__ == "__main__":
    sys.exit(main())
