"""emoshare-demo for real: the Gradio app served on 127.0.0.1, a gradio_client
posting files, and a headless Chromium screenshot of the page."""

import os
import shutil
import socket
import subprocess

import numpy as np
import pytest
import soundfile

from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
from emoshare_sb.inference import load_model
from emoshare_sb.inference.interfaces import _tiny_experiment, export_model
from emoshare_sb.synthetic.speech_corpus import SENTENCES, speak_clip

gradio = pytest.importorskip("gradio", reason="the demo extra is not installed")
gradio_client = pytest.importorskip("gradio_client")

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def model(tiny_hubert, tmp_path_factory):
    """An exported (untrained) ComParE model on the tiny HuBERT."""
    root = tmp_path_factory.mktemp("demo_model")
    experiment = _tiny_experiment(
        str(root / "experiment"), tiny_hubert, COMPARE23_EMOTIONS
    )
    return load_model(export_model(experiment, str(root / "export")))


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """A 3 s utterance (one window) and a 19 s recording (several windows)."""
    folder = tmp_path_factory.mktemp("demo_audio")
    rng = np.random.default_rng(0)
    short = speak_clip(np.full(4, 0.5), SENTENCES[0], "en", rng)
    long = np.concatenate(
        [
            speak_clip(rng.uniform(size=4), sentence, "en", rng)
            for sentence in SENTENCES[:6]
        ]
    )
    paths = {}
    for name, wave in (("short", short), ("long", long)):
        paths[name] = str(folder / f"{name}.wav")
        soundfile.write(paths[name], wave, 16000, subtype="PCM_16")
    assert len(long) / 16000 > 12  # longer than the 8 s default window
    return paths


@pytest.fixture(scope="module")
def served(model, recordings):
    """The app, launched on 127.0.0.1 with the long recording as example."""
    from emoshare_sb.cli.demo import build_app

    app = build_app(model, example=recordings["long"])
    port = free_port()
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
    )
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_client_gets_the_values_of_predict_file(served, model, recordings):
    client = gradio_client.Client(served, verbose=False)
    for name in ("short", "long"):
        bars, dimensions, timeline, values = client.predict(
            gradio_client.handle_file(recordings[name]), api_name="/predict"
        )
        expected = model.predict_file(recordings[name])
        assert set(values) == set(COMPARE23_EMOTIONS)
        for emotion in COMPARE23_EMOTIONS:
            assert values[emotion] == pytest.approx(expected[emotion], abs=1e-5)
        confidences = {c["label"]: c["confidence"] for c in bars["confidences"]}
        assert confidences == pytest.approx(expected, abs=1e-5)
        # The time plot only for a recording longer than one window.
        assert timeline["visible"] == (name == "long")
        if name == "long":
            assert timeline["value"]["plot"].startswith("data:image/")
        assert dimensions["visible"] is False  # ComParE: no A/V/D


def test_describe_splits_msp_outputs_into_classes_and_dimensions():
    from emoshare_sb.cli.demo import describe, timeline_figure
    from emoshare_sb.inference import VoteDistributionRecognizer
    from emoshare_sb.inference.interfaces import FilePrediction

    class FakeMSP(VoteDistributionRecognizer):
        """Only what describe() reads: group_outputs, as the real class does."""

        def __init__(self):  # no modules to load
            self.hparams = type(
                "H",
                (),
                {"classes": ["Angry", "Sad"], "dimensions": ["valence"]},
            )()

    values = {"class": "Sad", "Angry": 0.3, "Sad": 0.7, "valence": 4.5}
    windows = [
        {"start": 0.0, "end": 8.0, "values": values},
        {"start": 4.0, "end": 12.0, "values": {**values, "valence": 5.5}},
    ]
    shown = describe(FakeMSP(), FilePrediction("x.wav", 12.0, values, windows))
    assert shown["bars"] == {"Angry": 0.3, "Sad": 0.7}
    assert shown["dimensions"] == {"valence": 4.5}
    assert [w[2]["valence"] for w in shown["windows"]] == [4.5, 5.5]
    figure = timeline_figure(shown["windows"])
    assert len(figure.axes[0].lines) == 3  # two classes and valence


def find_chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_headless_chromium_screenshot_is_not_blank(served, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI must install chromium (.ci/run: apt-get install chromium)"
            )
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    screenshot = tmp_path / "demo.png"
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,1300",
        "--hide-scrollbars",
        # Time for the page's scripts and the example's prediction.
        "--virtual-time-budget=30000",
        f"--screenshot={screenshot}",
        served,
    ]
    subprocess.run(command, capture_output=True, timeout=240, check=False)
    assert screenshot.is_file(), "chromium wrote no screenshot"
    from PIL import Image

    pixels = np.asarray(Image.open(screenshot).convert("RGB"), dtype=float)
    # A rendered page: many colours and real contrast, not one flat colour.
    assert pixels.std() > 10.0
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    target = os.environ.get("EMOSHARE_DEMO_SCREENSHOT")
    if target:  # how docs/demo.png is made (README)
        shutil.copy(screenshot, target)
