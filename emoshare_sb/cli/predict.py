"""``emoshare-predict``: score audio files with a trained or exported model.

Inputs are audio files, folders (searched recursively for audio files) and
CSV lists of files (a ``path``, ``wav``, ``file`` or ``filename`` column, else
the first one; relative paths start at the CSV's folder)::

    emoshare-predict --model exported_model recordings/ more.wav list.csv \\
        --output predictions.csv

Any rate and channel count is read (down-mixed and resampled as in
training). Recordings longer than ``--window`` seconds are scored in sliding
windows: the output has one summary row per file (``segment`` = ``clip``,
the mean over windows) followed, for multi-window files, by one row per
window (``segment`` = 0, 1, ...). With ``--format json`` (or an output ending
in ``.json``) each file is one object with its summary and every window.

A file that cannot be scored (missing, corrupt, empty, or a prediction
that is not finite) is reported on stderr and in the output's ``error``
field, and the others are still scored; the exit status is then 1 (0 when
all files were scored, 2 for usage errors, all found before any file is
scored: a missing model folder, ``--device cuda`` without a GPU, a
non-finite ``--window``, an output path that is a folder). Two paths to the
same file are scored once. Output files are written atomically. The model
runs on the CPU unless ``--device`` says otherwise.

Files are sorted by duration and decoded (down-mixed, resampled) in
``--num_workers`` DataLoader worker processes; the windows of several files
go through the model ``--batch_size`` at a time. ``--vad`` scores only the
speech Silero VAD finds: windows stay on the recording's timeline, a window
without speech is marked ``silent`` (columns ``speech`` and ``silent``) and
not scored. A model folder's YAML is checked against an allow-list before it
is evaluated (:mod:`emoshare_sb.inference.safety`); ``--trust-code`` loads a
folder you wrote whatever it names.

The model's inference class is found from the folder
(:func:`emoshare_sb.inference.interfaces.load_model`), so the same command serves both
recipes. Columns after ``file,segment,start,end`` are the model's
``prediction_columns``: the emotion shares for a ComParE model; for an
MSP-Podcast model ``class`` (the most probable class), the eight class
probabilities (summing to 1) and ``arousal,valence,dominance`` on the 1..7
scale::

    emoshare-predict --model models/msp_wavlm podcast_turns/ -o msp.csv

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import csv
import io
import json
import math
import os
import sys

from tqdm import tqdm

from emoshare_sb.utils.io import atomic_write

AUDIO_EXTENSIONS = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aif",
    ".aiff",
    ".au",
    ".caf",
    ".w64",
    ".rf64",
)
LIST_COLUMNS = ("path", "wav", "file", "filename")


class UsageError(Exception):
    """Bad command-line input (exit status 2)."""


def find_inputs(arguments, extensions=AUDIO_EXTENSIONS):
    """Expands files, folders and CSV lists into the audio files to score.

    Arguments
    ---------
    arguments : list of str
        Audio files, folders (searched recursively, sorted) and ``.csv``
        lists. Paths that do not exist are kept: scoring reports them.
    extensions : sequence of str
        Lower-case extensions of the audio files looked for in folders.

    Returns
    -------
    list of str
        Audio file paths, in order, without duplicates: two paths to the
        same file (``recordings/a.wav`` and ``../x/recordings/a.wav``, a
        symbolic link) are one clip, kept under the first path given.

    Example
    -------
    >>> tmp = getfixture("tmpdir")
    >>> _ = (tmp / "a.wav").write(""), (tmp / "notes.txt").write("")
    >>> _ = (tmp / "list.csv").write("path\\nb.flac\\n")
    >>> [
    ...     os.path.basename(p)
    ...     for p in find_inputs([str(tmp), str(tmp / "list.csv")])
    ... ]
    ['a.wav', 'b.flac']
    """
    files = []
    for argument in arguments:
        if os.path.isdir(argument):
            for root, folders, names in os.walk(argument):
                folders.sort()
                files.extend(
                    os.path.join(root, name)
                    for name in sorted(names)
                    if os.path.splitext(name)[1].lower() in extensions
                )
        elif argument.lower().endswith(".csv") and os.path.isfile(argument):
            files.extend(read_file_list(argument))
        else:
            files.append(argument)
    unique = {}
    for path in files:
        unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def read_file_list(path):
    """Reads the audio paths of a CSV list.

    Arguments
    ---------
    path : str
        A CSV with a header; the ``path``, ``wav``, ``file`` or ``filename``
        column (else the first) holds the files, relative to the CSV's folder.

    Returns
    -------
    list of str
        The paths.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise UsageError(f"{path}: the file list is empty")
        column = next((header.index(c) for c in LIST_COLUMNS if c in header), 0)
        folder = os.path.dirname(os.path.abspath(path))
        return [
            os.path.join(folder, row[column].strip())
            for row in reader
            if len(row) > column and row[column].strip()
        ]


def csv_rows(result, names, vad=False):
    """Output CSV rows of one file: the summary, then each window if several.

    Arguments
    ---------
    result : dict
        ``{"file", "duration", "summary", "windows", "error"}`` as made by
        :func:`score_files`.
    names : list of str
        Output columns (the model's ``prediction_columns``).
    vad : bool
        Add ``speech`` (seconds of speech) and ``silent`` (1: not scored,
        empty values) to each row.

    Returns
    -------
    list of dict
        Rows keyed by ``file, segment, start, end, <names>, error``.

    Example
    -------
    >>> result = {
    ...     "file": "a.wav",
    ...     "duration": 2.0,
    ...     "error": None,
    ...     "windows": [{}],
    ...     "summary": {"class": "Sad", "Sad": 0.75, "Happy": 0.25},
    ... }
    >>> csv_rows(result, ["class", "Sad", "Happy"])[0]["class"]
    'Sad'
    >>> csv_rows(result, ["class", "Sad", "Happy"])[0]["Sad"]
    '0.750000'
    """
    if result["error"] is not None:
        return [{"file": result["file"], "error": result["error"]}]
    rows = [
        _csv_row(
            result["file"],
            "clip",
            0.0,
            result["duration"],
            result["summary"],
            names,
        )
    ]
    if vad:
        rows[0].update(_speech_fields(result.get("speech"), result["summary"]))
    if len(result["windows"]) > 1:
        for index, w in enumerate(result["windows"]):
            row = _csv_row(
                result["file"], index, w["start"], w["end"], w["values"], names
            )
            if vad:
                row.update(_speech_fields(w.get("speech"), w["values"]))
            rows.append(row)
    return rows


def _speech_fields(speech, values):
    return {
        "speech": "" if speech is None else f"{speech:.3f}",
        "silent": int(values is None),
    }


def _csv_row(file, segment, start, end, values, names):
    row = {
        "file": file,
        "segment": segment,
        "start": f"{start:.3f}",
        "end": f"{end:.3f}",
    }
    if values is None:  # a silent window (--vad): not scored
        return row
    # Scores with 6 decimals; labels (an MSP model's 1-best class) as they are.
    row.update(
        {
            name: f"{values[name]:.6f}"
            if isinstance(values[name], float)
            else values[name]
            for name in names
        }
    )
    return row


class AudioFiles:
    """Decodes audio files for a DataLoader's worker processes (a map-style dataset).

    Arguments
    ---------
    files : list of str
        Audio files.
    sample_rate : int
        The model's rate (files are down-mixed and resampled to it).
    """

    def __init__(self, files, sample_rate):
        self.files = files
        self.sample_rate = sample_rate

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        """``(index, signal, None)``, or ``(index, None, reason)`` on failure."""
        from emoshare_sb.data.audio import read_audio

        path = self.files[index]
        try:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: no such file")
            return index, read_audio(path, self.sample_rate), None
        except Exception as err:  # one bad file must not stop the others
            return index, None, _reason(path, err)


def length_batches(files, batch_size):
    """Groups files of similar durations (read from their headers).

    Arguments
    ---------
    files : list of str
        Audio files; unreadable ones count as 0 s (decoding reports them).
    batch_size : int
        Files per batch.

    Returns
    -------
    list of list of int
        File indices, shortest files first.

    Example
    -------
    >>> length_batches(["missing_a.wav", "missing_b.wav", "c.wav"], 2)
    [[0, 1], [2]]
    """
    from emoshare_sb.data.audio import audio_info

    durations = []
    for path in files:
        try:
            durations.append(audio_info(path)[0])
        except Exception:  # reported when decoded
            durations.append(0.0)
    order = sorted(range(len(files)), key=lambda i: (durations[i], i))
    return [
        order[first : first + batch_size]
        for first in range(0, len(order), batch_size)
    ]


def score_files(model, files, progress=True, num_workers=0, vad=False):
    """Scores each file, catching per-file failures.

    Files are decoded in ``num_workers`` worker processes (a torch
    DataLoader), grouped by duration, and the windows of a group go through
    the model ``model.window_batch_size`` at a time.

    Arguments
    ---------
    model : emoshare_sb.inference.interfaces.EmotionShareRegressor
        A loaded model.
    files : list of str
        Audio files.
    progress : bool
        Show a progress bar on stderr.
    num_workers : int
        Decoding processes (0: in this process).
    vad : bool
        Score only speech (see ``EmotionShareRegressor.score_signals``).

    Returns
    -------
    list of dict
        One ``{"file", "duration", "summary", "windows", "error"}`` per file,
        in the order of ``files`` (with ``speech`` under ``vad``); ``error``
        is None or the reason the file failed, e.g. a prediction that is
        not finite.
    """
    import torch

    loader = torch.utils.data.DataLoader(
        AudioFiles(files, model.hparams.sample_rate),
        batch_sampler=length_batches(files, model.window_batch_size),
        num_workers=num_workers if len(files) > 1 else 0,
        collate_fn=list,
        worker_init_fn=_one_thread,
    )
    results = [None] * len(files)
    bar = tqdm(
        total=len(files),
        desc="Scoring",
        unit="file",
        disable=not progress,
        file=sys.stderr,
    )
    for batch in loader:
        decoded = [(i, signal) for i, signal, _ in batch if signal is not None]
        for index, _, reason in batch:
            if reason is not None:
                results[index] = _failed(files[index], reason)
        try:
            scored = model.score_signals(
                [signal for _, signal in decoded],
                [files[i] for i, _ in decoded],
                vad=vad,
            )
        except Exception:  # score them one by one to name the culprit
            scored = []
            for index, signal in decoded:
                try:
                    scored.extend(
                        model.score_signals([signal], [files[index]], vad=vad)
                    )
                except Exception as one:
                    results[index] = _failed(
                        files[index], _reason(files[index], one)
                    )
                    scored.append(None)
        for (index, _), prediction in zip(decoded, scored, strict=True):
            if prediction is not None:
                results[index] = _result(prediction, vad)
        bar.update(len(batch))
    bar.close()
    return results


def _one_thread(worker_id):
    """Decoding workers use one thread each (the model uses the others)."""
    import torch

    del worker_id
    torch.set_num_threads(1)


def _reason(path, err):
    reason = str(err) or type(err).__name__
    return reason if path in reason else f"{path}: {reason}"


def _failed(path, reason):
    tqdm.write(f"FAILED {reason}", file=sys.stderr)
    return {
        "file": path,
        "duration": None,
        "summary": None,
        "windows": None,
        "error": reason,
    }


def _result(prediction, vad):
    """The output record of a FilePrediction, or a failure if not finite."""
    named = [("the clip", prediction.summary)] + [
        (f"window {i} ({w['start']:.3f}-{w['end']:.3f} s)", w["values"])
        for i, w in enumerate(prediction.windows)
    ]
    for where, values in named:
        bad = [
            name
            for name, value in (values or {}).items()
            if isinstance(value, float) and not math.isfinite(value)
        ]
        if bad:
            return _failed(
                prediction.path,
                f"{prediction.path}: the model predicted a non-finite value "
                f"(NaN or Inf) for {', '.join(bad)} in {where}; check the "
                "model's weights",
            )
    result = {
        "file": prediction.path,
        "duration": prediction.duration,
        "summary": prediction.summary,
        "windows": prediction.windows,
        "error": None,
    }
    if vad:
        result["speech"] = prediction.speech
    return result


def format_output(results, names, output_format, model_info, vad=False):
    """Renders the results as CSV or JSON text.

    Arguments
    ---------
    results : list of dict
        From :func:`score_files`.
    names : list of str
        Output columns (the model's ``prediction_columns``).
    output_format : str
        ``"csv"`` or ``"json"``.
    model_info : dict
        Model folder, window and hop, recorded in the JSON output.
    vad : bool
        Add the ``speech`` and ``silent`` CSV columns.

    Returns
    -------
    str
        The text to write.
    """
    if output_format == "json":
        document = {
            **model_info,
            "outputs": names,
            "failed": sum(r["error"] is not None for r in results),
            "files": results,
        }
        return json.dumps(document, indent=2) + "\n"
    stream = io.StringIO()
    fieldnames = ["file", "segment", "start", "end"]
    fieldnames += ["speech", "silent"] if vad else []
    fieldnames += [*names, "error"]
    writer = csv.DictWriter(stream, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerows(csv_rows(result, names, vad))
    return stream.getvalue()


def build_parser():
    """The argument parser of ``emoshare-predict``."""
    parser = argparse.ArgumentParser(
        prog="emoshare-predict",
        description="Score audio files with a trained emoshare_sb model "
        "(an exported folder or a recipe's output folder).",
    )
    parser.add_argument(
        "inputs", nargs="+", help="audio files, folders or CSV lists of files"
    )
    parser.add_argument(
        "-m",
        "--model",
        required=True,
        help="exported model folder or trained experiment folder (--output_folder)",
    )
    parser.add_argument(
        "-o", "--output", help="output file (default: standard output)"
    )
    parser.add_argument(
        "--format",
        choices=("csv", "json"),
        help="output format (default: from the output's extension, else csv)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="sliding window in seconds (default: the model's); 0 scores whole files",
    )
    parser.add_argument(
        "--hop",
        type=float,
        default=None,
        help="hop between windows in seconds (default: the model's, or half of --window)",
    )
    parser.add_argument(
        "--device", default="cpu", help="cpu (default), cuda, cuda:1, ..."
    )
    parser.add_argument(
        "--batch_size",
        type=int,
        default=8,
        help="windows scored together (default 8)",
    )
    parser.add_argument(
        "--num_workers",
        type=int,
        default=min(4, max(0, (os.cpu_count() or 1) - 1)),
        help="processes decoding audio (default: CPU cores - 1, at most 4; "
        "0 decodes in the main process)",
    )
    parser.add_argument(
        "--vad",
        action="store_true",
        help="score only speech (Silero VAD): windows keep the recording's "
        "timeline, windows without speech are marked silent and not scored",
    )
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help="load a model folder whose hyperparams.yaml names code outside "
        "the allow-list (only for folders you wrote yourself)",
    )
    parser.add_argument(
        "--no_progress", action="store_true", help="no progress bar"
    )
    parser.add_argument(
        "--backend",
        choices=("torch", "onnxruntime", "onnxruntime-int8"),
        default="torch",
        help="torch (default), or ONNX Runtime on CPU with the folder's model.onnx "
        "(model.int8.onnx for onnxruntime-int8) written by emoshare-export --onnx",
    )
    return parser


def main(argv=None):
    """Command line ``emoshare-predict``.

    Arguments
    ---------
    argv : list of str, optional
        Arguments; None reads ``sys.argv``.

    Returns
    -------
    int
        0 when every file was scored, 1 when some failed, 2 for usage errors.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        output_format = _output_format(args)
        _check_arguments(args)
        files = find_inputs(args.inputs)
        if not files:
            raise UsageError("no audio files found in the inputs")
        model = _load(args)
    except UsageError as err:
        print(f"emoshare-predict: error: {err}", file=sys.stderr)
        return 2

    results = score_files(
        model,
        files,
        progress=not args.no_progress,
        num_workers=args.num_workers,
        vad=args.vad,
    )
    model_info = {
        "model": os.path.abspath(args.model),
        "window": model.hparams.window,
        "hop": model.hparams.hop,
        "vad": args.vad,
    }
    text = format_output(
        results, model.prediction_columns, output_format, model_info, args.vad
    )
    if args.output:
        with atomic_write(args.output, "w", newline="") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    failed = sum(r["error"] is not None for r in results)
    if failed:
        print(f"{failed} of {len(results)} files failed", file=sys.stderr)
    return 1 if failed else 0


def _check_arguments(args):
    """Usage errors found before any model is loaded or file scored."""
    for name in ("window", "hop"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise UsageError(
                f"--{name} must be a finite number of seconds >= 0, got {value}"
            )
    if args.batch_size < 1:
        raise UsageError("--batch_size must be at least 1")
    if args.num_workers < 0:
        raise UsageError("--num_workers must be 0 or more")
    if args.output:
        if os.path.isdir(args.output):
            raise UsageError(
                f"--output '{args.output}' is a folder: give a file name, "
                "e.g. predictions.csv"
            )
        parent = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(parent):
            raise UsageError(
                f"--output '{args.output}': the folder '{parent}' does not exist"
            )
    if not os.path.exists(args.model):
        raise UsageError(
            f"the model folder '{args.model}' does not exist: give an exported "
            "model folder (emoshare-export) or a trained experiment folder"
        )
    _check_device(args.device)
    if args.vad:
        try:
            import silero_vad  # noqa: F401
        except ImportError as err:
            raise UsageError(
                "--vad needs silero-vad: pip install silero-vad"
            ) from err


def _check_device(device):
    """Refuses a device this machine does not have, before any work."""
    import torch

    from emoshare_sb.training.run_checks import RunStartError, check_device

    try:
        torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise UsageError(
            f"--device '{device}' is not a device: use cpu, cuda, cuda:1, ..."
        ) from err
    try:  # the recipes' CUDA checks, the same message
        check_device(device)
    except RunStartError as err:
        raise UsageError(str(err)) from err


def _output_format(args):
    if args.format:
        return args.format
    if args.output and args.output.lower().endswith(".json"):
        return "json"
    return "csv"


def _load(args):
    from emoshare_sb.inference.interfaces import load_model

    overrides = {}
    if args.window is not None:
        overrides["window"] = args.window if args.window > 0 else None
    if args.hop is not None:
        overrides["hop"] = args.hop
    elif args.window:
        overrides["hop"] = (
            args.window / 2
        )  # half-overlapping windows by default
    try:
        if args.backend == "torch":
            model = load_model(
                args.model,
                device=args.device,
                overrides=overrides,
                trust_code=args.trust_code,
            )
        else:
            from emoshare_sb.inference.onnx import load_onnx_model

            if args.device != "cpu":
                raise UsageError(
                    f"--backend {args.backend} runs on the CPU: drop --device"
                )
            model = load_onnx_model(
                args.model,
                quantized=args.backend == "onnxruntime-int8",
                overrides=overrides,
            )
    except (ValueError, FileNotFoundError, OSError) as err:
        raise UsageError(
            f"cannot load the model from '{args.model}': {err}"
        ) from err
    model.window_batch_size = args.batch_size
    window, hop = model.hparams.window, model.hparams.hop
    if window and hop is not None and not 0 < hop <= window:
        raise UsageError(
            f"--hop must be in (0, window], got window={window}, hop={hop}"
        )
    return model


if __name__ == "__main__":
    sys.exit(main())
