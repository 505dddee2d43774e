"""Length-bucketed batching: every clip once per epoch, little padding."""

import numpy as np
import speechbrain as sb
import torch

from emoshare_sb.training.batching import (
    dataloader_options,
    make_batch_sampler,
    padding_fraction,
)


def durations_dataset(count=400, low=1.0, high=8.0, seed=0):
    durations = np.random.default_rng(seed).uniform(low, high, count)
    data = {
        f"clip{i:04d}": {"duration": float(d)} for i, d in enumerate(durations)
    }
    return sb.dataio.dataset.DynamicItemDataset(data), durations.tolist()


def test_every_clip_exactly_once_per_epoch_and_reshuffled():
    dataset, _ = durations_dataset()
    sampler = make_batch_sampler(dataset, max_batch_length=48.0, shuffle=True)
    epochs = []
    for _ in range(3):
        batches = list(sampler)
        flat = [index for batch in batches for index in batch]
        assert sorted(flat) == list(range(len(dataset)))
        epochs.append(batches)
    assert epochs[0] != epochs[1] != epochs[2]  # a new order each epoch
    assert len(sampler) == len(epochs[-1])


def test_set_epoch_is_deterministic():
    dataset, _ = durations_dataset()
    first = make_batch_sampler(dataset, seed=3)
    second = make_batch_sampler(dataset, seed=3)
    list(first)  # an extra pass must not matter once the epoch is set
    first.set_epoch(5)
    second.set_epoch(5)
    assert list(first) == list(second)


def test_padding_is_bounded_and_batches_fit():
    dataset, durations = durations_dataset()
    sampler = make_batch_sampler(
        dataset, max_batch_length=48.0, max_padding=0.1
    )
    batches = list(sampler)
    for batch in batches:
        lengths = [durations[i] for i in batch]
        assert min(lengths) / max(lengths) >= 0.9 - 1e-9
        assert len(batch) == 1 or len(batch) * max(lengths) <= 48.0
    assert padding_fraction(batches, durations) < 0.1
    generator = torch.Generator().manual_seed(0)
    random_batches = torch.randperm(len(durations), generator=generator).split(
        8
    )
    assert (
        padding_fraction([b.tolist() for b in random_batches], durations) > 0.2
    )


def test_training_lengths_are_capped_at_the_crop():
    dataset, durations = durations_dataset()
    options = dataloader_options(
        dataset, train=True, train_window=5.5, max_batch_length=44.0
    )
    batches = list(options["batch_sampler"])
    cropped = [min(d, 5.5) for d in durations]
    assert padding_fraction(batches, cropped) < 0.1
    # Clips of at least 5.5 s all share the top bucket: 8 per batch, as in the paper.
    long_batches = [b for b in batches if min(cropped[i] for i in b) >= 5.5]
    assert long_batches and max(len(b) for b in long_batches) == 8


def test_eval_options_keep_order_and_feed_a_dataloader():
    dataset, durations = durations_dataset(count=40)
    dataset.add_dynamic_item(
        sb.utils.data_pipeline.takes("duration")(
            sb.utils.data_pipeline.provides("sig")(
                lambda duration: torch.zeros(int(duration * 100))
            )
        )
    )
    dataset.set_output_keys(["id", "sig"])
    dataset = dataset.filtered_sorted(sort_key="duration")
    options = dataloader_options(dataset, train=False, max_batch_length=20.0)
    assert options["batch_sampler"]._shuffle_ex is False
    loader = sb.dataio.dataloader.make_dataloader(dataset, **options)
    seen = []
    for batch in loader:
        signals, lens = batch.sig
        assert signals.shape[0] == len(batch.id) and float(lens.max()) == 1.0
        seen.extend(batch.id)
    assert sorted(seen) == sorted(dataset.data_ids) and len(seen) == len(
        set(seen)
    )
    sorted_durations = [
        dataset.data[data_id]["duration"] for data_id in dataset.data_ids
    ]
    assert sorted_durations == sorted(durations)
    batch_lengths = [
        max(sorted_durations[i] for i in b) for b in options["batch_sampler"]
    ]
    assert batch_lengths == sorted(batch_lengths, reverse=True)
