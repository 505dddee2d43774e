"""Evaluation memory is bounded by max_eval_batch_seconds, whatever the clip lengths."""

import csv

import pytest
import torch

from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS
from emoshare_sb.lobes.ssl import SSLEncoder
from emoshare_sb.training.feature_cache import (
    encode_batch,
    encode_padded_bounded,
    frames_for_samples,
)
from tests.conftest import run_recipe

LAYOUT = [[10, 5]] + [[3, 2]] * 4 + [[2, 2]] * 2


class Recording(torch.nn.Module):
    """Wraps an encoder and records the padded shape of every pass."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.shapes = []

    def forward(self, wavs, wav_lens):
        self.shapes.append(tuple(wavs.shape))
        return self.encoder(wavs, wav_lens)

    def feature_lengths(self, wav_lens, num_samples, num_frames):
        return self.encoder.feature_lengths(wav_lens, num_samples, num_frames)


@pytest.fixture(scope="module")
def encoder(tiny_hubert, tmp_path_factory):
    return SSLEncoder(tiny_hubert, str(tmp_path_factory.mktemp("hub")))


def _batch(seconds):
    generator = torch.Generator().manual_seed(0)
    total = int(max(seconds) * 16000)
    wavs = torch.zeros(len(seconds), total)
    for row, length in enumerate(seconds):
        samples = int(length * 16000)
        wavs[row, :samples] = torch.randn(samples, generator=generator)
    return wavs, torch.tensor([s / max(seconds) for s in seconds])


def test_a_batch_that_fits_is_encoded_exactly_as_without_a_bound(encoder):
    wavs, lens = _batch([2.0, 1.5, 1.0])
    with torch.no_grad():
        expected = encoder(wavs, lens)
        got, got_lens = encode_padded_bounded(encoder, wavs, lens, 6.0)
    assert torch.equal(got, expected)
    assert torch.equal(got_lens, encoder.feature_lengths(lens, 32000, 99))


def test_a_long_clip_is_chunked_and_no_pass_exceeds_the_bound(encoder):
    seconds = [9.0, 1.2, 0.8, 1.0]
    wavs, lens = _batch(seconds)
    recording = Recording(encoder)
    with torch.no_grad():
        feats, feat_lens = encode_padded_bounded(recording, wavs, lens, 2.0)
    assert all(
        rows * samples <= 2.0 * 16000 for rows, samples in recording.shapes
    )
    frames = torch.round(feat_lens * feats.shape[1]).long().tolist()
    for row, length in enumerate(seconds):
        clip = wavs[row, : int(length * 16000)]
        with torch.no_grad():
            # What the feature cache computes with 2 s chunks.
            (expected,) = encode_batch(encoder, [clip], LAYOUT, 32000)
        assert frames[row] == expected.shape[0]
        torch.testing.assert_close(
            feats[row, : frames[row]], expected, atol=1e-5, rtol=1e-5
        )
        assert not feats[row, frames[row] :].any()  # padding stays zero
    # Short clips are not cut: their frames are their own whole-clip frames.
    assert frames[1] == frames_for_samples(int(1.2 * 16000), LAYOUT)


def test_the_recipe_evaluates_with_a_small_bound(
    small_compare23, tiny_hubert, tmp_path
):
    run_recipe(
        "recipes/ComParE23/train.py",
        "hparams/hubert_attn.yaml",
        "--data_folder", small_compare23, "--ssl_source", tiny_hubert,
        "--encoder_dim", 32, "--output_folder", tmp_path, "--debug",
        "--device", "cpu", "--batch_size", 3,
        "--max_eval_batch_seconds", 1.0,
    )  # fmt: skip
    with open(tmp_path / "predictions" / "devel.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert all(
        0.0 <= float(row[e]) <= 1.0 for row in rows for e in COMPARE23_EMOTIONS
    )
