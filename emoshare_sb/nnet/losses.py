"""Losses for emotion regression.

Authors
 * emoshare_sb contributors 2026
"""

import torch


def concordance_correlation(predictions, targets, eps=1e-8):
    """Lin's concordance correlation coefficient per column, over the batch.

    ``CCC = 2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2)`` with
    population (biased) moments, as in the papers.

    Arguments
    ---------
    predictions : torch.Tensor
        ``[N, D]`` (or ``[N]``).
    targets : torch.Tensor
        Same shape.
    eps : float
        Keeps the ratio finite for constant columns (0 for the metric,
        :func:`emoshare_sb.metrics.regression.ccc_per_column`).

    Returns
    -------
    torch.Tensor
        ``[D]`` (or a scalar).

    Example
    -------
    >>> x = torch.tensor([[1.0], [2.0], [3.0]])
    >>> concordance_correlation(x, x)
    tensor([1.])
    >>> concordance_correlation(x, x + 1)
    tensor([0.5714])
    """
    pred_mean, target_mean = predictions.mean(dim=0), targets.mean(dim=0)
    pred_var = predictions.var(dim=0, unbiased=False)
    target_var = targets.var(dim=0, unbiased=False)
    covariance = ((predictions - pred_mean) * (targets - target_mean)).mean(
        dim=0
    )
    return (
        2
        * covariance
        / (pred_var + target_var + (pred_mean - target_mean) ** 2 + eps)
    )


def ccc_loss(predictions, targets):
    """``1 - CCC``, averaged over output columns (emotions or attributes).

    Arguments
    ---------
    predictions : torch.Tensor
        ``[N, D]``.
    targets : torch.Tensor
        ``[N, D]``.

    Returns
    -------
    torch.Tensor
        Scalar.

    Example
    -------
    >>> y = torch.rand(8, 9)
    >>> float(ccc_loss(y, y)) < 1e-6
    True
    """
    return 1.0 - concordance_correlation(predictions, targets).mean()


def mse_loss(predictions, targets):
    """Mean squared error over all outputs.

    Arguments
    ---------
    predictions : torch.Tensor
        ``[N, D]``.
    targets : torch.Tensor
        ``[N, D]``.

    Returns
    -------
    torch.Tensor
        Scalar.

    Example
    -------
    >>> mse_loss(torch.zeros(2, 3), torch.ones(2, 3))
    tensor(1.)
    """
    return torch.nn.functional.mse_loss(predictions, targets)


def summed_mse_loss(predictions, targets):
    """The sum over output columns of each column's mean squared error.

    Training :class:`emoshare_sb.nnet.heads.IndependentNetworks` on this
    sum gives every copy the gradient of its own single-output MSE, as when
    each output's network is trained alone (Mohapatra et al.); the mean over
    columns (:func:`mse_loss`) would scale each by ``1 / D``.

    Arguments
    ---------
    predictions : torch.Tensor
        ``[N, D]``.
    targets : torch.Tensor
        ``[N, D]``.

    Returns
    -------
    torch.Tensor
        Scalar.

    Example
    -------
    >>> summed_mse_loss(torch.zeros(2, 3), torch.ones(2, 3))
    tensor(3.)
    """
    return ((predictions - targets) ** 2).mean(dim=0).sum()
