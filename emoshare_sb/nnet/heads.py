"""Output heads that map a clip embedding to predictions.

Authors
 * emoshare_sb contributors 2026
"""

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
