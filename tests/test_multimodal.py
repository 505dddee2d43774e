"""Speech and text inputs (Morais et al.'s experiments 10-11): the text
upstream, late fusion of the two streams, and the IEMOCAP recipe's checks of
its ``inputs``."""

import csv
import json

import pytest
import torch

from emoshare_sb.lobes.frontends import FbankFrontEnd
from emoshare_sb.lobes.multimodal import LateFusion, SpeechTextEncoder
from emoshare_sb.lobes.text import TranscriptEncoder
from emoshare_sb.nnet.aggregators import ECAPAAggregator
from emoshare_sb.synthetic.encoders import make_tiny_text_model
from emoshare_sb.synthetic.iemocap import TRANSCRIPT_WORDS, make_iemocap_corpus
from emoshare_sb.training.hparams import resolve_encoder_widths
from tests.conftest import run_recipe, run_row_with

TEXT_YAML = "hparams/iemocap_exp10_bert_ecapa.yaml"
WORDS = ["i", "am", "so", "sad", "today", "okay"]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """A tiny random BERT folder with a tokenizer."""
    folder = tmp_path_factory.mktemp("bert") / "bert"
    return make_tiny_text_model(str(folder), WORDS, hidden_size=16, seed=3)


def test_a_late_fusion_embedding_does_not_depend_on_the_batch(bert):
    torch.manual_seed(0)
    encoder = SpeechTextEncoder(
        FbankFrontEnd(n_mels=20), TranscriptEncoder(bert, save_path=bert)
    )
    fusion = LateFusion(
        [
            ECAPAAggregator(20, channels=[8, 8, 8, 8, 24], lin_neurons=4),
            ECAPAAggregator(16, channels=[8, 8, 8, 8, 24], lin_neurons=4),
        ]
    )
    encoder.eval()
    fusion.eval()
    short_wav, long_wav = torch.randn(8000), torch.randn(16000)
    short_text, long_text = "okay.", "i am so sad today, so sad."
    with torch.no_grad():
        alone = fusion(
            encoder(short_wav[None], torch.tensor([1.0]), [short_text])
        )
        batch = torch.zeros(2, 16000)
        batch[0, :8000], batch[1] = short_wav, long_wav
        batched = fusion(
            encoder(batch, torch.tensor([0.5, 1.0]), [short_text, long_text])
        )
    assert alone.shape == (1, 8)
    # Padding frames and padding tokens are left out of both poolings.
    torch.testing.assert_close(batched[0], alone[0], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(batched[1], alone[0], atol=1e-3)


def test_late_fusion_needs_one_aggregator_per_stream():
    with pytest.raises(ValueError, match="at least two streams"):
        LateFusion([ECAPAAggregator(4, channels=[8, 8, 8, 8, 24])])
    fusion = LateFusion(
        [
            ECAPAAggregator(4, channels=[8, 8, 8, 8, 24]),
            ECAPAAggregator(4, channels=[8, 8, 8, 8, 24]),
        ]
    )
    stream = (torch.randn(2, 5, 4), torch.ones(2))
    with pytest.raises(ValueError, match="1 streams for 2 aggregators"):
        fusion([stream])


def test_text_dim_auto_reads_the_text_models_width(bert, tmp_path):
    # A text model's folder holds a tokenizer and no feature extractor: the
    # speech models' folder check must not refuse it.
    yaml = tmp_path / "text.yaml"
    yaml.write_text("text_source: a/b\ntext_dim: auto\n", encoding="utf-8")
    widths = resolve_encoder_widths(str(yaml), {"text_source": bert})
    assert widths["text_dim"] == 16


def run_text_recipe(tmp_path, *flags):
    """Runs experiment 10's row with ``flags``; the finished process."""
    return run_row_with(TEXT_YAML, tmp_path / "out", *flags)


def test_text_inputs_without_transcripts_are_one_line(recipe_samples, tmp_path):
    # The speech-only manifests data preparation writes without transcripts.
    annotation = f"{recipe_samples}/IEMOCAP/annotation"
    flags = []
    for split in ("train", "valid", "test"):
        with open(f"{annotation}/{split}.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        path = tmp_path / f"{split}.csv"
        with open(path, "w", newline="") as handle:
            columns = [c for c in rows[0] if c != "text"]
            writer = csv.DictWriter(handle, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        flags.append(f"--{split}_annotation={path}")
    process = run_text_recipe(tmp_path, *flags)
    assert process.returncode in (1, 2), process.stderr[-2000:]
    assert f"{tmp_path / 'train.csv'} has no 'text' column" in process.stderr
    assert "transcripts: True" in process.stderr
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "out" / "fold_1" / "save").exists()


def test_unknown_inputs_are_one_line(recipe_samples, tmp_path):
    del recipe_samples
    process = run_text_recipe(tmp_path, "--inputs=[video]")
    assert process.returncode in (1, 2), process.stderr[-2000:]
    assert (
        "--inputs must be one of [['speech'], ['text'], ['speech', 'text']]"
        in (process.stderr)
    )
    assert "Traceback" not in process.stderr


def test_the_text_pipeline_learns_the_words_tied_to_each_class(tmp_path):
    """Stage 1 of experiments 10-11 (BERT fine-tuned, mean pooling, linear)
    learns what the synthetic transcripts carry: half of the utterances hold
    a word of their class (``EMOTION_WORDS``). This checks the text path end
    to end (transcripts -> manifests -> tokens -> trained BERT), not that it
    recognises emotion: the BERT is tiny and random, the words synthetic.
    Measured here: test UA 70.6 % after 12 epochs (chance 25 %)."""
    corpus = make_iemocap_corpus(
        str(tmp_path / "IEMOCAP"), utterances_per_dialog=40, seed=1
    )
    bert = make_tiny_text_model(
        str(tmp_path / "bert"), TRANSCRIPT_WORDS, hidden_size=32
    )
    output = tmp_path / "out"
    run_recipe(
        "recipes/IEMOCAP/train.py",
        "hparams/iemocap_bert_mean.yaml",
        f"--data_folder={corpus}",
        f"--text_source={bert}",
        "--test_sessions=[1]",
        "--number_of_epochs=12",
        "--lr=0.001",
        "--encoder_lr=0.001",  # a random BERT, not a pretrained one
        "--batch_size=16",
        "--num_workers=0",
        f"--output_folder={output}",
        "--device=cpu",
    )
    results = json.loads((output / "results.json").read_text())
    test_ua = results["averaged"]["per_fold"]["1"]["ua"]
    assert test_ua > 0.45, test_ua  # 4 classes: chance is 0.25
