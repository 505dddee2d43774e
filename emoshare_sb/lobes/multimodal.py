"""Speech and text together: one encoder for both inputs, late fusion of their embeddings.

Morais et al.'s experiment 11 (shared/papers/004, "Fbank & BERT") encodes
the speech of an utterance and its transcript separately, pools each with
its own ECAPA-TDNN and concatenates the two utterance embeddings before the
linear classifier. The two inputs have different time axes (frames, tokens),
so :class:`~emoshare_sb.lobes.fusion.EarlyFusion` and
:class:`~emoshare_sb.lobes.fusion.ChannelSplitPooling`, which share one
axis, do not apply:

* :class:`SpeechTextEncoder` holds both encoders as one module (one
  ``encoder`` for the recipe's optimizers, freezing and checkpoints) and
  returns one ``(features, lengths)`` stream per input;
* :class:`LateFusion` pools each stream with its own aggregator and
  concatenates the embeddings.

Authors
 * emoshare_sb contributors 2026
"""

import torch

from emoshare_sb.lobes import feature_lengths


class SpeechTextEncoder(torch.nn.Module):
    """Encodes the waveforms and the transcripts of a batch, each with its encoder.

    Arguments
    ---------
    speech_encoder : torch.nn.Module
        ``(wavs, wav_lens) -> [B, T, C_s]`` with an ``output_size`` (e.g.
        :class:`~emoshare_sb.lobes.frontends.FbankFrontEnd`,
        :class:`~emoshare_sb.lobes.ssl.SSLEncoder`).
    text_encoder : torch.nn.Module
        ``texts -> ([B, N, C_t], lengths)`` with an ``output_size`` (e.g.
        :class:`~emoshare_sb.lobes.text.TranscriptEncoder`).

    Example
    -------
    >>> from emoshare_sb.lobes.frontends import FbankFrontEnd
    >>> from emoshare_sb.lobes.text import TranscriptEncoder
    >>> from emoshare_sb.synthetic.encoders import make_tiny_text_model
    >>> tmpdir = str(getfixture("tmpdir"))
    >>> source = make_tiny_text_model(tmpdir + "/bert", ["a", "sad", "day"])
    >>> encoder = SpeechTextEncoder(
    ...     FbankFrontEnd(n_mels=40),
    ...     TranscriptEncoder(source, save_path=tmpdir),
    ... )
    >>> wavs, wav_lens = torch.randn(2, 16000), torch.tensor([1.0, 0.5])
    >>> (speech, speech_lens), (text, text_lens) = encoder(
    ...     wavs, wav_lens, ["a sad day.", "a day"]
    ... )
    >>> speech.shape, text.shape  # frames, tokens
    (torch.Size([2, 101, 40]), torch.Size([2, 6, 32]))
    >>> (speech_lens * 101).round(), text_lens
    (tensor([101.,  51.]), tensor([1.0000, 0.6667]))
    >>> encoder.output_size  # the two widths, added
    72
    """

    def __init__(self, speech_encoder, text_encoder):
        super().__init__()
        self.speech_encoder = speech_encoder
        self.text_encoder = text_encoder
        self.output_size = speech_encoder.output_size + text_encoder.output_size

    @property
    def encoders(self):
        """The speech and the text encoder, in stream order."""
        return [self.speech_encoder, self.text_encoder]

    def forward(self, wavs, wav_lens, texts):
        """One ``(features, lengths)`` stream per input: speech, then text.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, samples]`` padded waveforms.
        wav_lens : torch.Tensor
            ``[B]`` relative lengths.
        texts : list of str
            The ``B`` transcripts.

        Returns
        -------
        list of tuple
            ``[(speech [B, T, C_s], lengths [B]), (text [B, N, C_t], lengths [B])]``.
        """
        speech = self.speech_encoder(wavs, wav_lens)
        speech_lens = feature_lengths(
            self.speech_encoder, wav_lens, wavs.shape[-1], speech.shape[-2]
        )
        return [(speech, speech_lens), self.text_encoder(texts)]


class LateFusion(torch.nn.Module):
    """Pools each input stream with its own aggregator and concatenates the embeddings.

    Arguments
    ---------
    aggregators : list of torch.nn.Module
        One per stream, ``(x [B, T_i, C_i], lengths) -> [B, D_i]``, in the
        order of the streams.

    Example
    -------
    >>> from emoshare_sb.nnet.pooling import MaskedMeanPooling
    >>> fusion = LateFusion([MaskedMeanPooling(), MaskedMeanPooling()])
    >>> lengths = torch.tensor([1.0, 0.5])
    >>> streams = [
    ...     (torch.randn(2, 10, 6), lengths),
    ...     (torch.randn(2, 4, 3), lengths),
    ... ]
    >>> fusion(streams).shape
    torch.Size([2, 9])
    """

    def __init__(self, aggregators):
        super().__init__()
        if len(aggregators) < 2:
            raise ValueError(
                f"LateFusion needs one aggregator per stream and at least two "
                f"streams, got {len(aggregators)} aggregator(s)"
            )
        self.aggregators = torch.nn.ModuleList(aggregators)

    def forward(self, streams):
        """Pools every stream and concatenates the utterance embeddings.

        Arguments
        ---------
        streams : list of tuple
            ``(features [B, T_i, C_i], lengths [B])`` per stream.

        Returns
        -------
        torch.Tensor
            ``[B, sum(D_i)]``.
        """
        if len(streams) != len(self.aggregators):
            raise ValueError(
                f"{len(streams)} streams for {len(self.aggregators)} aggregators: "
                "give one aggregator per encoder output, in order"
            )
        return torch.cat(
            [
                aggregator(features, lengths)
                for aggregator, (features, lengths) in zip(
                    self.aggregators, streams, strict=True
                )
            ],
            dim=-1,
        )
