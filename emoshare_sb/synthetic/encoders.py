"""Tiny randomly initialised encoders, saved as local HuggingFace folders.

They have the real families' architecture (HuBERT, wav2vec2, WavLM, Whisper),
only narrower and shallower, and are saved with ``save_pretrained`` so that
SpeechBrain loads them from a local folder exactly as it loads a hub model.
Their features carry no information about speech: they test plumbing only.

Authors
 * emoshare_sb contributors 2026
"""

from emoshare_sb.data.audio import SAMPLE_RATE

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
    >>> import os
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
        raise ValueError(
            f"family must be one of {_SSL_FAMILIES}, got '{family}'"
        )
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


# BERT's special tokens, first in its vocabulary.
BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def make_tiny_text_model(
    folder, words, hidden_size=32, num_layers=2, num_heads=2, seed=0
):
    """Saves a tiny randomly initialised BERT and its tokenizer as a local HF folder.

    The vocabulary is BERT's special tokens, ``"."`` and ``words`` (one
    token each: whole words, lower case), so every text made of ``words``
    tokenises without ``[UNK]``. The folder loads with ``AutoModel`` and
    ``AutoTokenizer``, as a hub snapshot does; its features carry no
    meaning.

    Arguments
    ---------
    folder : str
        Where to save.
    words : list of str
        The vocabulary's words (lower case, no spaces).
    hidden_size : int
        Transformer width.
    num_layers : int
        Transformer layers.
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
    >>> import os
    >>> path = make_tiny_text_model(str(getfixture("tmpdir") / "bert"), ["hi"])
    >>> sorted(os.listdir(path))
    ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']
    """
    import torch
    import transformers

    tokens = list(BERT_SPECIAL_TOKENS) + ["."]
    for word in words:
        if word != word.lower() or not word.isalnum():
            raise ValueError(
                f"words must be lower-case alphanumeric, got '{word}'"
            )
        if word not in tokens:
            tokens.append(word)
    tokenizer = transformers.BertTokenizer(
        vocab={token: index for index, token in enumerate(tokens)}
    )
    tokenizer.save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(tokens),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(folder)
    return folder


if __name__ == "__main__":
    from emoshare_sb.synthetic.cli import generator_main

    generator_main("ssl")
