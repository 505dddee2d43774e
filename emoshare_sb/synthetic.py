"""Small generated corpora and tiny random encoders for demos and tests.

Nothing here downloads anything. The corpora are written in the real corpora's
on-disk layouts (see ``shared/FORMATS.md``) and their labels are a smooth
function of audible properties of each clip (pitch, noisiness, loudness
modulation), so a model that learns anything shows it.

The tiny encoders are randomly initialised HuggingFace models with the real
families' architecture (HuBERT, wav2vec2, WavLM), saved with
``save_pretrained`` so that SpeechBrain loads them from a local folder exactly
as it loads a hub model.
"""

import argparse
import csv
import os

import numpy as np
import soundfile

from emoshare_sb.data.audio import SAMPLE_RATE
from emoshare_sb.data.compare23 import COMPARE23_EMOTIONS

# One prototype point per emotion in the 2-D latent space (pitch, noisiness).
_PROTOTYPES = np.array(
    [
        [0.9, 0.9],  # Anger: high, harsh
        [0.1, 0.3],  # Boredom: low, clean
        [0.2, 0.1],  # Calmness
        [0.5, 0.2],  # Concentration
        [0.7, 0.6],  # Determination
        [0.9, 0.4],  # Excitement
        [0.6, 0.3],  # Interest
        [0.3, 0.6],  # Sadness
        [0.1, 0.8],  # Tiredness: low, breathy
    ]
)


def synthesize_clip(latent, duration, rng, sample_rate=SAMPLE_RATE):
    """Renders a clip whose pitch and noisiness follow ``latent``.

    Arguments
    ---------
    latent : numpy.ndarray
        Two numbers in [0, 1]: pitch height and noisiness.
    duration : float
        Seconds.
    rng : numpy.random.Generator
        Source of randomness (phase, noise, small jitter).
    sample_rate : int
        Hz.

    Returns
    -------
    numpy.ndarray
        Float32 samples in [-1, 1].

    Example
    -------
    >>> clip = synthesize_clip(np.array([0.5, 0.5]), 1.0, np.random.default_rng(0))
    >>> clip.shape, bool(np.abs(clip).max() <= 1.0)
    ((16000,), True)
    """
    n = int(duration * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 100.0 + 300.0 * latent[0] * rng.uniform(0.95, 1.05)
    vibrato = 1.0 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / sample_rate
    harmonics = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 6))
    noise = rng.standard_normal(n)
    mix = (1 - latent[1]) * harmonics / 2.0 + latent[1] * noise / 2.0
    syllable_rate = 2.0 + 4.0 * latent[0]
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * syllable_rate * t + rng.uniform(0, 6.28))
    clip = mix * envelope
    return (0.9 * clip / (np.abs(clip).max() + 1e-8)).astype(np.float32)


def emotion_shares(latent, prototypes=_PROTOTYPES, width=0.08):
    """Max-normalised emotion shares of a latent point, as ComParE ships them.

    Arguments
    ---------
    latent : numpy.ndarray
        Two numbers in [0, 1].
    prototypes : numpy.ndarray
        ``[emotions, 2]`` prototype points.
    width : float
        Spread of each emotion around its prototype.

    Returns
    -------
    numpy.ndarray
        ``[emotions]`` shares in [0, 1] whose maximum is exactly 1.

    Example
    -------
    >>> shares = emotion_shares(np.array([0.9, 0.9]))
    >>> float(shares.max()), int(shares.argmax())
    (1.0, 0)
    """
    scores = np.exp(-((latent - prototypes) ** 2).sum(axis=1) / width)
    return scores / scores.max()


def make_compare23_corpus(
    folder,
    n_train=200,
    n_devel=60,
    n_test=60,
    min_duration=1.2,
    max_duration=4.0,
    seed=0,
    test_labels=False,
):
    """Writes a corpus in the ComParE 2023 Emotion Share layout.

    ``wav/NNNNN.wav`` (16 kHz mono 16-bit) and ``lab/{train,devel,test}.csv``
    with the real header; test labels are ``?`` (and, with ``test_labels``,
    the true ones go to ``lab/test.unmasked.csv``).

    Arguments
    ---------
    folder : str
        The corpus root to create.
    n_train, n_devel, n_test : int
        Clips per split.
    min_duration, max_duration : float
        Clip durations are uniform in this range (seconds).
    seed : int
        Random seed; the same seed gives the same corpus.
    test_labels : bool
        Also write ``lab/test.unmasked.csv``.

    Returns
    -------
    str
        ``folder``.

    Example
    -------
    >>> root = make_compare23_corpus(str(getfixture("tmpdir")), 3, 2, 2)
    >>> sorted(os.listdir(os.path.join(root, "lab")))
    ['devel.csv', 'test.csv', 'train.csv']
    >>> len(os.listdir(os.path.join(root, "wav")))
    7
    """
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, "wav"), exist_ok=True)
    os.makedirs(os.path.join(folder, "lab"), exist_ok=True)
    header = ["filename"] + COMPARE23_EMOTIONS
    index = 1
    for split, count in (("train", n_train), ("devel", n_devel), ("test", n_test)):
        rows, true_rows = [], []
        for _ in range(count):
            name = f"{index:05d}.wav"
            index += 1
            latent = rng.uniform(0, 1, size=2)
            duration = rng.uniform(min_duration, max_duration)
            clip = synthesize_clip(latent, duration, rng)
            soundfile.write(
                os.path.join(folder, "wav", name), clip, SAMPLE_RATE, subtype="PCM_16"
            )
            shares = [f"{v:.4f}".rstrip("0").rstrip(".") for v in emotion_shares(latent)]
            true_rows.append([name] + shares)
            rows.append([name] + (["?"] * len(shares) if split == "test" else shares))
        _write_rows(os.path.join(folder, "lab", f"{split}.csv"), header, rows)
        if split == "test" and test_labels:
            _write_rows(os.path.join(folder, "lab", "test.unmasked.csv"), header, true_rows)
    return folder


def _write_rows(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


_SSL_FAMILIES = ("hubert", "wav2vec2", "wavlm", "whisper")


def make_tiny_ssl_model(
    folder, family="hubert", hidden_size=32, num_layers=2, num_heads=2, seed=0
):
    """Saves a tiny randomly initialised SSL (or Whisper) encoder as a local HF folder.

    For ``hubert``, ``wav2vec2`` and ``wavlm`` the architecture is the real
    family's (convolutional front-end with the 320x downsampling of the large
    models, layer-norm feature extractor, pre-norm transformer), only narrower
    and shallower. For ``whisper`` it is a ``WhisperModel`` (80 mel bins, the
    real 30 s / 1500-frame input, a one-layer decoder with a small vocabulary)
    with a ``WhisperFeatureExtractor``. The folder holds the config,
    safetensors weights and the feature-extractor config, like a hub
    snapshot, so it can be passed as ``ssl_source``.

    Arguments
    ---------
    folder : str
        Where to save.
    family : str
        ``hubert``, ``wav2vec2``, ``wavlm`` or ``whisper``.
    hidden_size : int
        Transformer width.
    num_layers : int
        Transformer (encoder) layers; the encoder yields ``num_layers + 1``
        hidden states.
    num_heads : int
        Attention heads.
    seed : int
        Initialisation seed.

    Returns
    -------
    str
        ``folder``.

    Example
    -------
    >>> path = make_tiny_ssl_model(str(getfixture("tmpdir") / "tiny"))
    >>> sorted(os.listdir(path))
    ['config.json', 'model.safetensors', 'preprocessor_config.json']
    >>> path = make_tiny_ssl_model(str(getfixture("tmpdir") / "w"), "whisper")
    >>> sorted(os.listdir(path))
    ['config.json', 'model.safetensors', 'preprocessor_config.json']
    """
    import torch
    import transformers

    if family not in _SSL_FAMILIES:
        raise ValueError(f"family must be one of {_SSL_FAMILIES}, got '{family}'")
    if family == "whisper":
        config = transformers.WhisperConfig(
            vocab_size=64,
            num_mel_bins=80,
            d_model=hidden_size,
            encoder_layers=num_layers,
            encoder_attention_heads=num_heads,
            encoder_ffn_dim=2 * hidden_size,
            decoder_layers=1,
            decoder_attention_heads=num_heads,
            decoder_ffn_dim=2 * hidden_size,
            max_source_positions=1500,  # the real 30 s input: 3000 mel frames
            max_target_positions=16,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=3,
            suppress_tokens=None,
            begin_suppress_tokens=None,
        )
        torch.manual_seed(seed)
        transformers.WhisperModel(config).save_pretrained(folder)
        transformers.WhisperFeatureExtractor(
            feature_size=80, sampling_rate=SAMPLE_RATE
        ).save_pretrained(folder)
        return folder
    config_class, model_class = {
        "hubert": (transformers.HubertConfig, transformers.HubertModel),
        "wav2vec2": (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model),
        "wavlm": (transformers.WavLMConfig, transformers.WavLMModel),
    }[family]
    config = config_class(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=2 * hidden_size,
        conv_dim=(32,) * 7,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        layerdrop=0.0,
    )
    torch.manual_seed(seed)
    model = model_class(config)
    model.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLE_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(folder)
    return folder


def main(argv=None):
    """Command line: ``python -m emoshare_sb.synthetic --compare23 DIR --ssl DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare23", help="write a ComParE 2023 layout corpus here")
    parser.add_argument("--n_train", type=int, default=200)
    parser.add_argument("--n_devel", type=int, default=60)
    parser.add_argument("--n_test", type=int, default=60)
    parser.add_argument("--ssl", help="save a tiny random SSL (or Whisper) encoder here")
    parser.add_argument("--family", default="hubert", choices=_SSL_FAMILIES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.compare23:
        make_compare23_corpus(
            args.compare23, args.n_train, args.n_devel, args.n_test, seed=args.seed,
            test_labels=True,
        )
        print(f"ComParE 2023 layout corpus written to {args.compare23}")
    if args.ssl:
        make_tiny_ssl_model(args.ssl, family=args.family, seed=args.seed)
        print(f"Tiny random {args.family} encoder saved to {args.ssl}")


if __name__ == "__main__":
    main()
