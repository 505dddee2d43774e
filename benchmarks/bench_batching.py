#!/usr/bin/env python3
"""Benchmark 2: padded frames in batches, length-bucketed sampler vs random batching.

On a synthetic corpus of 1-8 s clips, over several epochs, this compares the
fraction of each padded batch that is padding (what the encoder computes for
nothing) for

* training (lengths capped at the 5.5 s random crop): random batches of 8 (the
  recipe's ``shuffle: True, batch_size: 8``) vs
  :func:`emoshare_sb.training.batching.dataloader_options` (``train=True``);
* evaluation (whole clips): random batches of 8, batches of 8 of the
  duration-sorted split (the recipe's evaluation), and ours (``train=False``).

It also checks that every clip appears exactly once per epoch.

    .venv/bin/python benchmarks/bench_batching.py [--quick]

Authors
 * emoshare_sb contributors 2026
"""

import argparse
import tempfile

import _common

TARGET_PADDING = 0.10


def epoch_stats(batches_per_epoch, lengths):
    """Padding fraction, batches and clips per batch over epochs; checks coverage."""
    from emoshare_sb.training.batching import padding_fraction

    all_batches = [batch for epoch in batches_per_epoch for batch in epoch]
    for epoch in batches_per_epoch:
        flat = sorted(index for batch in epoch for index in batch)
        if flat != list(range(len(lengths))):
            raise AssertionError(
                "a clip is missing or repeated within an epoch"
            )
    return (
        padding_fraction(all_batches, lengths),
        len(all_batches) / len(batches_per_epoch),
        sum(map(len, all_batches)) / len(all_batches),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="200 clips, 2 epochs"
    )
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--batch-size", type=int, default=8, help="random batching"
    )
    parser.add_argument("--train-window", type=float, default=5.5)
    parser.add_argument("--max-batch-seconds", type=float, default=44.0)
    args = parser.parse_args()
    if args.quick:
        args.clips, args.epochs = 200, 2

    import speechbrain as sb
    import torch

    from emoshare_sb.training.batching import dataloader_options

    torch.set_num_threads(_common.NUM_THREADS)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = _common.make_corpus(tmp, n_train=args.clips, seed=3)["train"]
        dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(manifest)
    durations = [dataset.data[i]["duration"] for i in dataset.data_ids]
    cropped = [min(d, args.train_window) for d in durations]
    generator = torch.Generator().manual_seed(0)

    def random_epochs(count):
        return [
            [
                b.tolist()
                for b in torch.randperm(count, generator=generator).split(
                    args.batch_size
                )
            ]
            for _ in range(args.epochs)
        ]

    def sampler_epochs(sampler):
        return [list(sampler) for _ in range(args.epochs)]

    ours_train = dataloader_options(
        dataset, train=True, train_window=args.train_window,
        max_batch_length=args.max_batch_seconds,
    )["batch_sampler"]  # fmt: skip
    sorted_set = dataset.filtered_sorted(sort_key="duration")
    sorted_durations = [
        sorted_set.data[i]["duration"] for i in sorted_set.data_ids
    ]
    ours_eval = dataloader_options(
        sorted_set, train=False, max_batch_length=args.max_batch_seconds
    )["batch_sampler"]
    sorted_batches = [
        list(range(start, min(start + args.batch_size, len(sorted_durations))))
        for start in range(0, len(sorted_durations), args.batch_size)
    ]

    rows = []
    for stage, name, epochs, lengths in (
        ("train", f"random batches of {args.batch_size}", random_epochs(len(cropped)), cropped),
        ("train", "ours (length buckets)", sampler_epochs(ours_train), cropped),
        ("eval", f"random batches of {args.batch_size}", random_epochs(len(durations)), durations),
        ("eval", f"sorted by duration, batches of {args.batch_size}", [sorted_batches] * args.epochs, sorted_durations),
        ("eval", "ours (length buckets)", sampler_epochs(ours_eval), sorted_durations),
    ):  # fmt: skip
        padding, batches, clips = epoch_stats(epochs, lengths)
        target = ""
        if name.startswith("ours"):
            target = f"<= {TARGET_PADDING:.0%}: {_common.verdict(padding <= TARGET_PADDING)}"
        rows.append(
            [
                stage,
                name,
                f"{padding:.1%}",
                f"{batches:.0f}",
                f"{clips:.1f}",
                target,
            ]
        )

    print(_common.machine_line())
    print(
        f"{args.clips} clips of 1-8 s (mean {sum(durations) / len(durations):.2f} s), "
        f"{args.epochs} epochs; training lengths capped at the {args.train_window} s crop; "
        f"ours: at most {args.max_batch_seconds:.0f} s of padded audio per batch. "
        "Every clip appeared exactly once per epoch in every row.\n"
    )
    _common.print_table(
        [
            "stage",
            "batching",
            "padded frames",
            "batches/epoch",
            "clips/batch",
            "target",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
