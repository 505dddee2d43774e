"""Shared pieces of the benchmarks: the synthetic corpus, a HuBERT-shaped
random encoder, and table printing. Nothing is downloaded.

Authors
 * emoshare_sb contributors 2026
"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from emoshare_sb.data.compare23 import prepare_compare23  # noqa: E402
from emoshare_sb.synthetic.compare23 import make_compare23_corpus  # noqa: E402

# Every benchmark draws clips of 1-8 s, as the issue specifies.
MIN_DURATION, MAX_DURATION = 1.0, 8.0
NUM_THREADS = 2


# The Large shape (HuBERT/WavLM/wav2vec2 Large: 24 layers, 1024 wide, 315 M).
LARGE_SHAPE = dict(
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    conv_bias=True,
)


def hubert_config(size="base"):
    """``transformers.HubertConfig()`` defaults (Base, 95 M parameters) or a Large shape."""
    import transformers

    if size == "base":
        return transformers.HubertConfig()
    if size == "large":
        return transformers.HubertConfig(**LARGE_SHAPE)
    raise ValueError(f"size must be 'base' or 'large', got {size!r}")


def make_hubert_folder(folder, size="base", seed=0):
    """Saves a randomly initialised HuBERT of the given shape as a local HF folder."""
    import transformers

    torch.manual_seed(seed)
    model = transformers.HubertModel(hubert_config(size))
    model.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(folder)
    return folder, sum(p.numel() for p in model.parameters())


def make_corpus(folder, n_train, n_devel=0, seed=0):
    """The synthetic ComParE-layout corpus (1-8 s clips) and its manifests.

    Returns
    -------
    dict
        ``{split: manifest_csv_path}`` for train (and devel when requested).
    """
    root = make_compare23_corpus(
        os.path.join(folder, "corpus"),
        n_train=n_train,
        n_devel=n_devel,
        n_test=0,
        min_duration=MIN_DURATION,
        max_duration=MAX_DURATION,
        seed=seed,
    )
    splits = ("train", "devel") if n_devel else ("train",)
    save = os.path.join(folder, "save")
    prepare_compare23(root, save, splits=splits)
    return {split: os.path.join(save, f"{split}.csv") for split in splits}


def machine_line():
    """One line: CPU model, torch's CPU capability, native bf16, threads, load."""
    from emoshare_sb.utils.cpu import cpu_summary

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return (
        f"Machine: {cpu_summary()}; load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} (other processes share these cores when it exceeds 0)"
    )


def peak_rss_mb():
    """This process's peak resident memory in MB (``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss``, which Linux carries across ``execve``,
    so that a worker started by a larger parent reports the parent's peak.
    """
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(headers, rows, file=sys.stdout):
    """Prints a GitHub-markdown table."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return (
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            + " |"
        )

    print(line(cells[0]), file=file)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=file)
    for row in cells[1:]:
        print(line(row), file=file)


def verdict(ok):
    """Pass/miss marker for a target."""
    return "meets target" if ok else "MISSES target"
