"""Output heads that map a clip embedding to predictions.

Authors
 * emoshare_sb contributors 2026
"""

import copy

import torch


class MLPHead(torch.nn.Module):
    """A two-layer MLP head, as in Atmaja & Sasou (2024), Table II.

    ``Linear(input_size, hidden_size) -> activation -> dropout ->
    Linear(hidden_size, output_size) -> output activation``. With the paper's
    settings (256 hidden units, GELU, 9 sigmoid outputs) it regresses the nine
    emotion shares in [0, 1].

    Arguments
    ---------
    input_size : int
        Embedding dimension.
    output_size : int
        Number of outputs (emotions).
    hidden_size : int
        Hidden units.
    activation : type
        Hidden activation class.
    dropout : float
        Dropout after the hidden layer.
    output_activation : str or None
        ``"sigmoid"``, ``"softmax"``, ``"log_softmax"`` or None (linear).

    Example
    -------
    >>> head = MLPHead(input_size=1024, output_size=9)
    >>> out = head(torch.randn(4, 1024))
    >>> out.shape, bool(((out > 0) & (out < 1)).all())
    (torch.Size([4, 9]), True)
    >>> sum(p.numel() for p in head.parameters())
    264713
    """

    def __init__(
        self,
        input_size,
        output_size,
        hidden_size=256,
        activation=torch.nn.GELU,
        dropout=0.0,
        output_activation="sigmoid",
    ):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(input_size, hidden_size),
            activation(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden_size, output_size),
        )
        outputs = {
            None: torch.nn.Identity(),
            "sigmoid": torch.nn.Sigmoid(),
            "softmax": torch.nn.Softmax(dim=-1),
            "log_softmax": torch.nn.LogSoftmax(dim=-1),
        }
        if output_activation not in outputs:
            raise ValueError(
                f"output_activation must be one of {list(outputs)}, got {output_activation!r}"
            )
        self.output_activation = outputs[output_activation]

    def forward(self, x):
        """Maps ``[B, input_size]`` embeddings to ``[B, output_size]`` outputs.

        Arguments
        ---------
        x : torch.Tensor
            ``[B, input_size]``.

        Returns
        -------
        torch.Tensor
            ``[B, output_size]``.
        """
        return self.output_activation(self.layers(x))


class PooledHead(torch.nn.Module):
    """An aggregator and a head as one network: ``[B, T, C]`` frames -> outputs.

    Arguments
    ---------
    aggregator : torch.nn.Module
        ``(features [B, T, C], lengths [B]) -> [B, E]``.
    head : torch.nn.Module
        ``[B, E] -> [B, K]``.

    Example
    -------
    >>> from emoshare_sb.nnet.pooling import MaskedMeanPooling
    >>> network = PooledHead(MaskedMeanPooling(), torch.nn.Linear(4, 1))
    >>> network(torch.randn(2, 5, 4), torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 1])
    """

    def __init__(self, aggregator, head):
        super().__init__()
        self.aggregator = aggregator
        self.head = head

    def forward(self, features, lengths=None):
        """Pools the valid frames, then applies the head."""
        return self.head(self.aggregator(features, lengths))


class IndependentNetworks(torch.nn.Module):
    """``num_outputs`` copies of one network, each giving one output column.

    Mohapatra et al. (2023) train one single-output network per emotion,
    every training script with the same seed (so the same initial weights
    and batch order). This module holds that many copies of the seeded
    network (deep copies: the same initial weights) and concatenates their
    outputs. No parameter is shared, so with a loss that is a *sum* of
    per-output losses (:func:`emoshare_sb.nnet.losses.summed_mse_loss`) the
    gradient of each copy is exactly the gradient its own single-emotion
    network gets, and Adam (per-parameter state) moves each copy as that
    network moves: one run trains the nine networks. Selecting and
    averaging each output's checkpoints on its own devel score (the
    ComParE recipe's ``checkpoint_selection: per_emotion``) then gives each
    emotion its own best epochs, as the nine separate trainings do.

    Arguments
    ---------
    network : torch.nn.Module
        ``(features, lengths) -> [B, 1]``, e.g. a :class:`PooledHead`.
    num_outputs : int
        How many copies (emotions).

    Example
    -------
    >>> from emoshare_sb.nnet.pooling import MaskedMeanPooling
    >>> network = PooledHead(MaskedMeanPooling(), torch.nn.Linear(4, 1))
    >>> networks = IndependentNetworks(network, 3)
    >>> networks(torch.randn(2, 5, 4), torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 3])
    >>> torch.equal(networks.networks[0].head.weight, network.head.weight)
    True
    """

    def __init__(self, network, num_outputs):
        super().__init__()
        self.networks = torch.nn.ModuleList(
            copy.deepcopy(network) for _ in range(num_outputs)
        )

    def forward(self, features, lengths=None):
        """``[B, num_outputs]``: column k from copy k."""
        return torch.cat(
            [network(features, lengths) for network in self.networks], dim=1
        )
