"""Losses against a distribution of grader votes (a probability vector per clip).

Mitra et al. (2025) train on the probability density of the graders'
categorical votes rather than on the consensus class. Both losses take the
model's log-probabilities (e.g. an ``MLPHead`` with
``output_activation="log_softmax"``) and a target distribution whose rows
sum to 1; emotion shares that are max-normalised (as ComParE ships them) must
be divided by their row sum first. :func:`pdf_ccc_loss` is the paper's own
loss (Sec. 3.1, App. A.1: CCC over every output, the pdf's as well).

Authors
 * emoshare_sb contributors 2026
"""

import torch

from emoshare_sb.nnet.losses import ccc_loss


def kl_divergence_loss(log_probs, target_pdf):
    """``KL(target || model)`` averaged over the batch.

    A thin wrapper of ``torch.nn.functional.kl_div`` with
    ``reduction="batchmean"`` (the true KL divergence per clip; ``"mean"``
    would also divide by the number of classes). Zero target probabilities
    contribute nothing.

    Arguments
    ---------
    log_probs : torch.Tensor
        ``[B, K]`` model log-probabilities.
    target_pdf : torch.Tensor
        ``[B, K]`` target probabilities, rows summing to 1.

    Returns
    -------
    torch.Tensor
        Scalar.

    Example
    -------
    >>> target = torch.tensor([[0.5, 0.5, 0.0]])
    >>> kl_divergence_loss(
    ...     torch.log(torch.tensor([[0.5, 0.5, 1e-9]])), target
    ... ).abs() < 1e-6
    tensor(True)
    >>> kl_divergence_loss(torch.log(torch.tensor([[0.25, 0.25, 0.5]])), target)
    tensor(0.6931)
    """
    return torch.nn.functional.kl_div(
        log_probs, target_pdf, reduction="batchmean"
    )


def soft_cross_entropy(log_probs, target_pdf):
    """Cross-entropy with probability targets, ``-sum(p log q)``, averaged over the batch.

    A thin wrapper of ``torch.nn.functional.cross_entropy`` with probability
    targets. It differs from :func:`kl_divergence_loss` by the target entropy,
    a constant, so both have the same gradients. ``cross_entropy`` applies a
    log-softmax, which leaves log-probabilities unchanged, so logits may be
    passed as well.

    Arguments
    ---------
    log_probs : torch.Tensor
        ``[B, K]`` model log-probabilities (or logits).
    target_pdf : torch.Tensor
        ``[B, K]`` target probabilities, rows summing to 1.

    Returns
    -------
    torch.Tensor
        Scalar.

    Example
    -------
    >>> target = torch.tensor([[0.5, 0.5, 0.0]])
    >>> soft_cross_entropy(torch.log(torch.tensor([[0.25, 0.25, 0.5]])), target)
    tensor(1.3863)
    >>> logits = torch.randn(4, 9)
    >>> pdf = torch.softmax(torch.randn(4, 9), dim=-1)
    >>> torch.allclose(
    ...     soft_cross_entropy(logits, pdf),
    ...     soft_cross_entropy(torch.log_softmax(logits, -1), pdf),
    ... )
    True
    """
    return torch.nn.functional.cross_entropy(log_probs, target_pdf)


def pdf_ccc_loss(log_probs, target_pdf):
    """``1 - CCC`` of each category's probability over the batch, averaged.

    Mitra et al. (2025, Sec. 3.1 and App. A.1) train every output with the
    CCC loss, ``-1/N sum_i CCC_i`` over the N output targets: for the vote
    pdf, category i's predicted probability against its vote share across
    the clips of the batch (this is that loss plus 1). It needs at least two
    clips.

    Arguments
    ---------
    log_probs : torch.Tensor
        ``[B, K]`` model log-probabilities.
    target_pdf : torch.Tensor
        ``[B, K]`` target probabilities, rows summing to 1.

    Returns
    -------
    torch.Tensor
        Scalar.

    Example
    -------
    >>> pdf = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    >>> float(pdf_ccc_loss(pdf.log(), pdf)) < 1e-6
    True
    """
    return ccc_loss(log_probs.exp(), target_pdf)
