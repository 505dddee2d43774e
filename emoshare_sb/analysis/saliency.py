"""Which SSL layer to use: cross-correlation layer saliency (Mitra et al., 2025).

For layer ``k`` let ``h_k`` be a clip's mean-pooled ``C``-dimensional
representation and ``y`` its ``D`` targets; all correlations below are
Pearson correlations over the clips. Eq. 1-3 of the paper:

* per dimension ``i`` and target ``l``:
  ``S_{i,k,l} = |corr(h_{k,i}, y_l)| + gamma_{i,k,l}``,
* ``gamma_{i,k,l} = 1/(C-1) * sum_{j != i} w_{j,k,l} |corr(h_{k,i}, h_{k,j})|``
  with ``w_{j,k,l} = |corr(h_{k,j}, y_l)|``: a dimension also counts through
  the target-relevant dimensions it is correlated with,
* the layer saliency averages over the dimensions and the targets,
  ``mu_k = 1/D sum_l (1/C sum_i S_{i,k,l})``.

The paper writes eq. 3 as the mean over targets of ``S_{CCS_{k,l}}`` without
saying how the dimensions are combined; the mean over dimensions is used here.
The most salient layer is ``argmax_k mu_k``.

:class:`SaliencyAccumulator` gathers the needed sums clip by clip (memory
``O(L C^2)``, not ``O(N L C)``, so the paper's 30K clips fit), and
:func:`main` is the command line: ``emoshare-layer-saliency MANIFEST
--ssl_source ... --targets ...``.

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import csv
import math
import os
import random
import sys

import torch
from speechbrain.utils.data_utils import batch_pad_right
from speechbrain.utils.logger import get_logger

from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.nnet.pooling import frame_mask
from emoshare_sb.utils.io import atomic_write, write_json

logger = get_logger(__name__)


class SaliencyAccumulator:
    """Accumulates the moments needed for the layer saliency, batch by batch.

    Sums are kept in float64: first and second moments of the features of
    every layer (``[L, C]`` and ``[L, C, C]``), of the targets, and the
    feature-target cross moments (``[L, C, D]``).

    Example
    -------
    >>> acc = SaliencyAccumulator()
    >>> feats, targets = torch.randn(50, 3, 4), torch.randn(50, 2)
    >>> acc.update(feats[:20], targets[:20])
    >>> acc.update(feats[20:], targets[20:])
    >>> whole = SaliencyAccumulator()
    >>> whole.update(feats, targets)
    >>> torch.allclose(acc.compute()["saliency"], whole.compute()["saliency"])
    True
    """

    def __init__(self):
        self.count = 0
        self.sum_x = self.sum_xx = self.sum_y = self.sum_yy = self.sum_xy = None

    def update(self, features, targets):
        """Adds a batch of clips.

        Arguments
        ---------
        features : torch.Tensor
            ``[N, L, C]`` mean-pooled features of every layer.
        targets : torch.Tensor
            ``[N, D]`` targets.
        """
        x = torch.as_tensor(features).detach().to("cpu", torch.float64)
        y = torch.as_tensor(targets).detach().to("cpu", torch.float64)
        if y.ndim == 1:
            y = y.unsqueeze(1)
        if x.ndim != 3 or y.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"expected features [N, L, C] and targets [N, D], got "
                f"{tuple(x.shape)} and {tuple(y.shape)}"
            )
        moments = (
            x.sum(dim=0),
            torch.einsum("nli,nlj->lij", x, x),
            y.sum(dim=0),
            (y * y).sum(dim=0),
            torch.einsum("nli,nd->lid", x, y),
        )
        if self.count == 0:
            self.sum_x, self.sum_xx, self.sum_y, self.sum_yy, self.sum_xy = (
                moments
            )
        else:
            self.sum_x += moments[0]
            self.sum_xx += moments[1]
            self.sum_y += moments[2]
            self.sum_yy += moments[3]
            self.sum_xy += moments[4]
        self.count += x.shape[0]

    def compute(self, rel_eps=1e-10):
        """Computes eq. 1-3 from the accumulated moments.

        Arguments
        ---------
        rel_eps : float
            A dimension (or target) whose variance is below ``rel_eps`` times
            its squared mean (plus a tiny absolute floor) is constant: its
            correlations are taken as 0.

        Returns
        -------
        dict
            ``saliency`` ``[L]`` (``mu_k``), ``per_target`` ``[L, D]`` (mean
            over dimensions of ``S_{i,k,l}``), ``ranking`` ``[L]`` (layers by
            decreasing saliency) and ``num_clips``.
        """
        if self.count < 2:
            raise ValueError(
                f"saliency needs at least 2 clips, got {self.count}"
            )
        n = self.count
        mean_x = self.sum_x / n  # [L, C]
        mean_y = self.sum_y / n  # [D]
        cov_xx = self.sum_xx / n - mean_x[:, :, None] * mean_x[:, None, :]
        var_x = torch.diagonal(cov_xx, dim1=1, dim2=2)
        var_y = self.sum_yy / n - mean_y**2
        cov_xy = self.sum_xy / n - mean_x[:, :, None] * mean_y[None, None, :]

        inv_std_x = _inverse_std(var_x, mean_x, rel_eps)  # [L, C]
        inv_std_y = _inverse_std(var_y, mean_y, rel_eps)  # [D]
        corr_xy = (
            cov_xy * inv_std_x[:, :, None] * inv_std_y
        ).abs()  # [L, C, D]
        corr_xx = (cov_xx * inv_std_x[:, :, None] * inv_std_x[:, None, :]).abs()
        corr_xx = corr_xx.clamp(max=1.0)
        corr_xy = corr_xy.clamp(max=1.0)
        dims = corr_xx.shape[-1]
        if dims > 1:
            off_diagonal = corr_xx - torch.diag_embed(
                torch.diagonal(corr_xx, dim1=1, dim2=2)
            )
            gamma = off_diagonal @ corr_xy / (dims - 1)  # [L, C, D]
        else:
            gamma = torch.zeros_like(corr_xy)
        per_target = (corr_xy + gamma).mean(dim=1)  # [L, D]
        saliency = per_target.mean(dim=1)  # [L]
        ranking = torch.argsort(saliency, descending=True, stable=True)
        return {
            "saliency": saliency,
            "per_target": per_target,
            "ranking": ranking,
            "num_clips": n,
        }


def _inverse_std(var, mean, rel_eps):
    constant = var <= rel_eps * mean**2 + 1e-300
    return torch.where(constant, 0.0, 1.0 / torch.sqrt(var.clamp(min=1e-300)))


def layer_saliency(features, targets):
    """Cross-correlation saliency of every layer (Mitra et al., eq. 1-3).

    Arguments
    ---------
    features : torch.Tensor
        ``[N, L, C]`` mean-pooled features of ``L`` layers for ``N`` clips.
    targets : torch.Tensor
        ``[N, D]`` (or ``[N]``) targets.

    Returns
    -------
    dict
        ``saliency`` ``[L]``, ``per_target`` ``[L, D]``, ``ranking`` ``[L]``
        (layer indices, most salient first) and ``num_clips``.

    Example
    -------
    >>> torch.manual_seed(0) and None
    >>> targets = torch.randn(200, 2)
    >>> feats = torch.randn(200, 4, 8)
    >>> feats[:, 2, :3] += 2 * targets[:, :1]  # layer 2 carries target 0
    >>> result = layer_saliency(feats, targets)
    >>> result["saliency"].shape, result["per_target"].shape
    (torch.Size([4]), torch.Size([4, 2]))
    >>> int(result["ranking"][0])
    2
    """
    accumulator = SaliencyAccumulator()
    accumulator.update(features, targets)
    return accumulator.compute()


def read_labelled_rows(manifest, targets):
    """Reads manifest rows whose target columns are all finite numbers.

    Arguments
    ---------
    manifest : str
        A CSV with columns ``ID``, ``wav`` and the target columns.
    targets : list of str, optional
        Target columns; None takes every column except ``ID``, ``duration``
        and ``wav``.

    Returns
    -------
    tuple
        ``(rows, targets, skipped)``: the labelled rows (dicts), the target
        names and the number of rows skipped for missing labels.

    Raises
    ------
    DataPrepError
        When a column is missing or no row is labelled.
    """
    with open(manifest, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        rows = list(reader)
    if targets is None:
        targets = [c for c in columns if c not in ("ID", "duration", "wav")]
    missing = [c for c in ["ID", "wav"] + list(targets) if c not in columns]
    if missing or not targets:
        raise DataPrepError(
            f"missing column(s) {missing or ['<targets>']}; the manifest has {columns}",
            manifest,
        )
    labelled = []
    for row in rows:
        try:
            values = [float(row[t]) for t in targets]
        except (TypeError, ValueError):
            continue
        if all(math.isfinite(v) for v in values):
            row["_targets"] = values
            labelled.append(row)
    if not labelled:
        raise DataPrepError(
            f"no row has finite values in {targets} (an unlabelled split such as test?)",
            manifest,
        )
    return labelled, list(targets), len(rows) - len(labelled)


@torch.no_grad()
def pooled_layer_features(encoder, wavs, wav_lens):
    """Mean over the valid frames of every hidden state.

    Arguments
    ---------
    encoder : emoshare_sb.lobes.ssl.SSLEncoder
        An encoder with ``layer="all"``.
    wavs : torch.Tensor
        ``[B, samples]``.
    wav_lens : torch.Tensor
        ``[B]`` relative lengths.

    Returns
    -------
    torch.Tensor
        ``[B, L + 1, C]``.
    """
    hidden = encoder(wavs, wav_lens)  # [L + 1, B, T, C]
    weights = frame_mask(hidden[0], wav_lens)[None, :, :, None].to(hidden.dtype)
    pooled = (hidden * weights).sum(dim=2) / weights.sum(dim=2)
    return pooled.transpose(0, 1)


def compute_layer_saliency(
    manifest,
    ssl_source,
    targets=None,
    max_clips=None,
    save_path="pretrained_models",
    batch_size=8,
    device=None,
    seed=0,
):
    """Extracts mean-pooled features of every layer and computes the saliency.

    Arguments
    ---------
    manifest : str
        A manifest CSV (``ID, duration, wav`` and target columns).
    ssl_source : str
        HF hub id or local folder of the SSL encoder.
    targets : list of str, optional
        Target columns; None takes all non-metadata columns.
    max_clips : int, optional
        Use a random sample of at most this many labelled clips.
    save_path : str
        Cache folder for hub downloads.
    batch_size : int
        Clips per forward pass.
    device : str, optional
        Torch device; None picks CUDA when available.
    seed : int
        Seed of the clip sample.

    Returns
    -------
    dict
        JSON-ready summary: per-layer saliency, per-target saliency, ranking
        and the best layer.
    """
    from emoshare_sb.data.audio import read_audio
    from emoshare_sb.lobes.ssl import SSLEncoder

    rows, targets, skipped = read_labelled_rows(manifest, targets)
    if skipped:
        logger.info(
            f"Skipping {skipped} rows without finite labels in {manifest}"
        )
    if max_clips is not None and len(rows) > max_clips:
        rows = random.Random(seed).sample(rows, max_clips)
    if "duration" in rows[0]:
        rows.sort(key=lambda r: float(r["duration"]))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    encoder = SSLEncoder(
        ssl_source, save_path=save_path, freeze=True, layer="all"
    )
    encoder = encoder.to(device).eval()
    accumulator = SaliencyAccumulator()
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        wavs, wav_lens = batch_pad_right([read_audio(r["wav"]) for r in batch])
        pooled = pooled_layer_features(
            encoder, wavs.to(device), wav_lens.to(device)
        )
        accumulator.update(pooled, torch.tensor([r["_targets"] for r in batch]))
        logger.info(
            f"Encoded {min(start + batch_size, len(rows))}/{len(rows)} clips"
        )
    result = accumulator.compute()

    ranking = [int(k) for k in result["ranking"]]
    return {
        "manifest": os.path.abspath(manifest),
        "ssl_source": ssl_source,
        "targets": targets,
        "num_clips": result["num_clips"],
        "definition": "Mitra et al. (2025) eq. 1-3: mean over targets and "
        "dimensions of |corr(h_i, y)| + gamma_i",
        "saliency": [float(v) for v in result["saliency"]],
        "per_target": {
            name: [float(v) for v in result["per_target"][:, j]]
            for j, name in enumerate(targets)
        },
        "ranking": ranking,
        "best_layer": ranking[0],
    }


def plot_saliency(summary, path):
    """Saves a bar plot of the per-layer saliency as a PNG, atomically.

    Arguments
    ---------
    summary : dict
        The output of :func:`compute_layer_saliency`.
    path : str
        The PNG file.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    saliency = summary["saliency"]
    layers = list(range(len(saliency)))
    colors = [
        "tab:red" if k == summary["best_layer"] else "tab:blue" for k in layers
    ]
    figure = Figure(figsize=(max(4.0, 0.35 * len(layers) + 2), 3.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.bar(layers, saliency, color=colors)
    axes.set_xlabel("hidden state (0 = CNN features)")
    axes.set_ylabel("saliency $\\mu_{CCS,k}$")
    axes.set_title(
        f"{os.path.basename(str(summary['ssl_source']).rstrip('/'))}: "
        f"best layer {summary['best_layer']}"
    )
    axes.set_xticks(layers)
    figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120)


def main(argv=None):
    """Command line ``emoshare-layer-saliency``: rank the layers of an SSL encoder.

    Arguments
    ---------
    argv : list of str, optional
        Arguments; None reads ``sys.argv``.

    Returns
    -------
    int
        Exit status (0).
    """
    parser = argparse.ArgumentParser(
        prog="emoshare-layer-saliency",
        description="Ranks the hidden layers of an SSL encoder by cross-correlation "
        "saliency against the targets of a manifest (Mitra et al., 2025, eq. 1-3).",
    )
    parser.add_argument(
        "manifest", help="manifest CSV (ID, duration, wav, targets)"
    )
    parser.add_argument(
        "--ssl_source", required=True, help="HF hub id or local folder"
    )
    parser.add_argument(
        "--targets",
        default=None,
        help="comma-separated target columns (default: all but ID, duration, wav)",
    )
    parser.add_argument(
        "--max_clips",
        type=int,
        default=None,
        help="random sample of at most N labelled clips",
    )
    parser.add_argument("--output_folder", required=True)
    parser.add_argument(
        "--save_path",
        default=None,
        help="cache for hub downloads (default: OUTPUT/pretrained_models)",
    )
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.max_clips is not None and args.max_clips < 2:
        parser.error(
            "--max_clips must be at least 2 (correlations need 2 clips)"
        )
    if args.batch_size < 1:
        parser.error("--batch_size must be at least 1")

    targets = (
        [t.strip() for t in args.targets.split(",") if t.strip()]
        if args.targets
        else None
    )
    try:
        summary = compute_layer_saliency(
            args.manifest,
            args.ssl_source,
            targets=targets,
            max_clips=args.max_clips,
            save_path=args.save_path
            or os.path.join(args.output_folder, "pretrained_models"),
            batch_size=args.batch_size,
            device=args.device,
            seed=args.seed,
        )
    except (OSError, DataPrepError) as err:
        parser.exit(2, f"emoshare-layer-saliency: error: {err}\n")

    os.makedirs(args.output_folder, exist_ok=True)
    json_path = os.path.join(args.output_folder, "saliency.json")
    png_path = os.path.join(args.output_folder, "saliency.png")
    write_json(json_path, summary)
    plot_saliency(summary, png_path)

    print(
        f"Layer saliency of {summary['ssl_source']} on {summary['num_clips']} clips "
        f"({', '.join(summary['targets'])}):"
    )
    print("rank  layer  saliency")
    for rank, layer in enumerate(summary["ranking"], start=1):
        print(f"{rank:4d}  {layer:5d}  {summary['saliency'][layer]:.4f}")
    print(
        f"Use layer {summary['best_layer']} (SSLEncoder(layer={summary['best_layer']}))."
    )
    print(f"Saved {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
