"""The Whisper lobe's encoder output of a clip depends on that clip only.

Three defects of SpeechBrain 1.1.2's
``speechbrain.integrations.huggingface.whisper.Whisper``, each failing one
test here, all passing with patch.diff:

* the log-mel dynamic range is clamped 8 (log10) below the maximum of the
  whole batch, so a quiet clip's features change when it is batched with a
  loud one (OpenAI's and HF's feature extractors use the clip's own
  maximum);
* a frozen model is kept in train mode (``freeze_model`` calls
  ``model.train()``, and ``Brain`` calls ``train()`` every epoch), so its
  dropout makes the features of the same clip random;
* audio past 30 s is silently dropped (``pad_or_trim``), also with
  ``encoder_only=True`` where the encoder could cover it in windows.

A tiny random Whisper model is built locally (no download).
"""

import pytest
import torch
import transformers
from speechbrain.integrations.huggingface.whisper import Whisper

SAMPLE_RATE = 16000
WINDOW = 30 * SAMPLE_RATE


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    """A local tiny Whisper model (dropout 0.5) and its feature extractor."""
    folder = tmp_path_factory.mktemp("tiny_whisper")
    config = transformers.WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        d_model=16,
        encoder_layers=1,
        encoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=32,
        max_source_positions=1500,
        max_target_positions=16,
        dropout=0.5,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=3,
        suppress_tokens=None,
        begin_suppress_tokens=None,
    )
    torch.manual_seed(0)
    transformers.WhisperModel(config).save_pretrained(folder)
    transformers.WhisperFeatureExtractor(
        feature_size=80, sampling_rate=SAMPLE_RATE
    ).save_pretrained(folder)
    return str(folder)


def encoder(source, tmp_path, **options):
    """The frozen encoder-only lobe, as an SSL front-end is used."""
    return Whisper(
        source, str(tmp_path), encoder_only=True, freeze=True, **options
    )


def test_a_quiet_clip_has_the_same_features_alone_and_batched(
    tiny_whisper, tmp_path
):
    model = encoder(tiny_whisper, tmp_path).eval()
    generator = torch.Generator().manual_seed(0)
    loud = torch.randn(SAMPLE_RATE, generator=generator)
    quiet = 1e-4 * torch.randn(SAMPLE_RATE, generator=generator)
    batched = model(torch.stack([loud, quiet]))
    alone = model(quiet.unsqueeze(0))
    torch.testing.assert_close(batched[1], alone[0], atol=1e-5, rtol=0)


def test_a_frozen_model_stays_in_eval_mode(tiny_whisper, tmp_path):
    model = encoder(tiny_whisper, tmp_path)
    model.train()  # what Brain does at the start of every epoch
    assert not model.model.training
    wav = torch.randn(
        1, SAMPLE_RATE, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(model(wav), model(wav), atol=0, rtol=0)


def test_audio_past_30_s_is_encoded(tiny_whisper, tmp_path):
    model = encoder(tiny_whisper, tmp_path).eval()
    wav = torch.randn(
        1, WINDOW + SAMPLE_RATE, generator=torch.Generator().manual_seed(0)
    )
    out = model(wav)
    assert out.shape[1] == 3000  # two windows of 1500 frames
    torch.testing.assert_close(
        out[:, :1500], model(wav[:, :WINDOW]), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        out[:, 1500:], model(wav[:, WINDOW:]), atol=1e-5, rtol=0
    )
