"""A HuggingFace text encoder (BERT) whose outputs come with their lengths.

SpeechBrain's :class:`speechbrain.integrations.huggingface.textencoder.TextEncoder`
tokenises a list of strings and returns the last hidden state ``[B, T, C]``
of a padded batch, without saying which tokens are padding, and without
truncating a text longer than the model's positions. :class:`TranscriptEncoder`
returns the tokens' relative lengths as well, so that a masked aggregator
(e.g. :class:`~emoshare_sb.nnet.aggregators.ECAPAAggregator`) pools the
valid tokens only: an utterance encodes the same alone or in any batch.
It is the text upstream of Morais et al.'s experiments 10 and 11
(shared/papers/004), on IEMOCAP's transcripts.

Authors
 * emoshare_sb contributors 2026
"""

import torch
from speechbrain.integrations.huggingface.textencoder import TextEncoder


class TranscriptEncoder(TextEncoder):
    """Encodes texts into token features and their relative lengths.

    Arguments
    ---------
    source : str
        A HuggingFace hub id (e.g. ``google-bert/bert-base-uncased``) or a
        local folder holding the model and its tokenizer.
    save_path : str
        Where hub downloads are cached.
    freeze : bool
        If True the encoder is not trained and stays in eval mode.
    max_tokens : int
        Texts are truncated to this many tokens (with ``[CLS]`` and
        ``[SEP]``); at most the model's ``max_position_embeddings``.

    Example
    -------
    >>> from emoshare_sb.synthetic.encoders import make_tiny_text_model
    >>> source = make_tiny_text_model(
    ...     str(getfixture("tmpdir") / "bert"), ["a", "sad", "day"]
    ... )
    >>> encoder = TranscriptEncoder(source, save_path=str(getfixture("tmpdir")))
    >>> features, lengths = encoder(["a sad day.", "a day"])
    >>> features.shape  # [CLS] a sad day . [SEP]
    torch.Size([2, 6, 32])
    >>> lengths  # the second text: 4 of 6 tokens
    tensor([1.0000, 0.6667])
    """

    def __init__(self, source, save_path, freeze=True, max_tokens=128):
        super().__init__(source=source, save_path=save_path, freeze=freeze)
        positions = self.model.config.max_position_embeddings
        if not 2 < max_tokens <= positions:
            raise ValueError(
                f"max_tokens must be in 3..{positions} (the model's "
                f"positions), got {max_tokens}"
            )
        self.max_tokens = max_tokens
        self.output_size = self.model.config.hidden_size

    def forward(self, texts):
        """Tokenises and encodes a batch of texts.

        Arguments
        ---------
        texts : list of str
            The batch.

        Returns
        -------
        features : torch.Tensor
            ``[B, T, C]`` last hidden state (padding tokens after the text).
        lengths : torch.Tensor
            ``[B]`` relative lengths: each text's tokens over ``T``.
        """
        tokens = self.tokenizer(
            list(texts),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
        ).to(self.model.device)
        with torch.set_grad_enabled(
            not self.freeze and torch.is_grad_enabled()
        ):
            features = self.model(**tokens).last_hidden_state
        mask = tokens["attention_mask"]
        return features, mask.sum(dim=1) / mask.shape[1]
