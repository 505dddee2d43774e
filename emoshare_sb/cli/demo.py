"""Command line ``emoshare-demo``: a local web demo of a trained model.

``emoshare-demo --model FOLDER`` serves a Gradio app on 127.0.0.1: upload or
record audio and see what the model hears, the per-emotion shares (ComParE
2023 models) or the class distribution and arousal/valence/dominance
(MSP-Podcast models) as bars, and, for a recording longer than one window,
a plot of each output over time. The numbers are those of
``EmotionShareRegressor.score_file`` (``emoshare-predict`` gives the same).

Gradio is an optional extra: ``pip install emoshare_sb[demo]``.

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import os
import sys

from matplotlib.figure import Figure

from emoshare_sb.inference import VoteDistributionRecognizer, load_model

API_NAME = "predict"


def describe(model, prediction):
    """What the app shows of one prediction, as plain data.

    Arguments
    ---------
    model : EmotionShareRegressor
        The loaded model (a ``VoteDistributionRecognizer`` for MSP-Podcast).
    prediction : FilePrediction
        From ``model.score_file``.

    Returns
    -------
    dict
        ``bars`` (``{name: value in [0, 1]}``: shares or class
        probabilities), ``dimensions`` (``{name: value}``, MSP only, else
        empty), ``summary`` (every named value of the clip, as
        ``predict_file`` returns them), ``windows`` (``[(start, end,
        {name: value})]``) and ``duration`` (seconds).
    """
    if isinstance(model, VoteDistributionRecognizer):
        summary = model.group_outputs(prediction.summary)
        bars = dict(summary["probabilities"])
        dimensions = {
            name: value
            for name, value in summary.items()
            if name not in ("probabilities", "class")
        }
    else:
        summary = dict(prediction.summary)
        bars, dimensions = dict(summary), {}
    windows = [
        (
            window["start"],
            window["end"],
            {name: window["values"][name] for name in (*bars, *dimensions)},
        )
        for window in prediction.windows
    ]
    return {
        "bars": bars,
        "dimensions": dimensions,
        "summary": summary,
        "windows": windows,
        "duration": prediction.duration,
    }


def dimensions_figure(dimensions):
    """Bars of arousal/valence/dominance (None without dimensions)."""
    if not dimensions:
        return None
    figure = Figure(figsize=(5, 2.6))  # no pyplot: nothing global to close
    axis = figure.subplots()
    axis.bar(list(dimensions), list(dimensions.values()), color="#4c72b0")
    axis.set_ylim(1, 7)  # MSP-Podcast's scale
    axis.set_ylabel("1 (low) to 7 (high)")
    axis.set_title("Arousal, valence, dominance")
    figure.tight_layout()
    return figure


def timeline_figure(windows):
    """Each output over time, window by window (None for a single window)."""
    if len(windows) < 2:
        return None
    centres = [(start + end) / 2 for start, end, _ in windows]
    figure = Figure(figsize=(8, 3.4))
    axis = figure.subplots()
    for name in windows[0][2]:
        axis.plot(
            centres, [values[name] for _, _, values in windows], label=name
        )
    axis.set_xlabel("time (s), window centres")
    axis.set_ylabel("prediction")
    axis.legend(fontsize=7, ncol=3, loc="upper right")
    axis.set_title("Over time")
    figure.tight_layout()
    return figure


def build_app(model, title=None, example=None):
    """The Gradio app of ``model``.

    Arguments
    ---------
    model : EmotionShareRegressor
        The loaded model.
    title : str, optional
        Shown at the top (default: the model's kind).
    example : str, optional
        An audio file loaded in the input, the page opening with its results.

    Returns
    -------
    gradio.Blocks
        Not launched. Its ``/predict`` endpoint takes an audio file and
        returns the bars (a ``Label``), the dimensions' and the time plots
        and the clip's values (JSON, as ``predict_file`` returns them).
    """
    try:
        import gradio as gr
    except ImportError as error:
        raise SystemExit(
            "error: emoshare-demo needs Gradio: pip install emoshare_sb[demo]"
        ) from error
    is_msp = isinstance(model, VoteDistributionRecognizer)
    title = title or (
        "Emotion classes and arousal/valence/dominance (MSP-Podcast)"
        if is_msp
        else "Emotion shares (ComParE 2023)"
    )

    def outputs_of(path):
        """The bars, the two figures (or None) and the values of a file."""
        try:
            shown = describe(model, model.score_file(path))
        except (OSError, RuntimeError, ValueError) as error:
            raise gr.Error(f"Cannot score this audio: {error}") from error
        return (
            shown["bars"],
            dimensions_figure(shown["dimensions"]),
            timeline_figure(shown["windows"]),
            shown["summary"],
        )

    def predict(path):
        """Scores the uploaded or recorded file."""
        if not path:
            raise gr.Error("Upload or record audio first.")
        bars, dimensions, timeline, values = outputs_of(path)
        return (
            bars,
            gr.update(value=dimensions, visible=dimensions is not None),
            gr.update(value=timeline, visible=timeline is not None),
            values,
        )

    # The example is scored here, so that the page opens with its results.
    shown = outputs_of(example) if example else (None, None, None, None)
    with gr.Blocks(title="emoshare_sb demo") as app:
        gr.Markdown(f"# {title}")
        with gr.Row():
            audio = gr.Audio(
                value=example,
                sources=["upload", "microphone"],
                type="filepath",
                label="Speech",
            )
            bars = gr.Label(
                value=shown[0],
                num_top_classes=len(model.output_names),
                label="Class distribution" if is_msp else "Emotion shares",
            )
        button = gr.Button("Predict", variant="primary")
        dimensions = gr.Plot(
            value=shown[1], label="Dimensions", visible=shown[1] is not None
        )
        timeline = gr.Plot(
            value=shown[2], label="Over time", visible=shown[2] is not None
        )
        values = gr.JSON(value=shown[3], label="Values")
        button.click(
            predict,
            inputs=audio,
            outputs=[bars, dimensions, timeline, values],
            api_name=API_NAME,
        )
    return app


def build_parser():
    """The ``emoshare-demo`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="emoshare-demo",
        description="A local web demo of a trained or exported model.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="an exported model folder or a trained experiment folder",
    )
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default: this machine only)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--example", help="an audio file scored when the page opens"
    )
    return parser


def main(argv=None):
    """Command line ``emoshare-demo``: loads the model and serves the app.

    Arguments
    ---------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    if not os.path.isdir(args.model):
        raise SystemExit(f"error: --model folder '{args.model}' does not exist")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = build_app(
        load_model(args.model, device=args.device), example=args.example
    )
    print(f"emoshare-demo: http://{args.host}:{args.port}", flush=True)
    app.launch(server_name=args.host, server_port=args.port, show_error=True)


if __name__ == "__main__":
    sys.exit(main())
