"""The frozen-encoder feature cache: round trip, invalidation, resume, sharding."""

import glob
import json
import os

import numpy as np
import pytest
import soundfile
import speechbrain as sb
import torch

from emoshare_sb.data.audio import read_audio
from emoshare_sb.lobes.padding import padding_invariant
from emoshare_sb.lobes.ssl import SSLEncoder
from emoshare_sb.nnet.heads import MLPHead
from emoshare_sb.nnet.pooling import MaskedAttentivePooling
from emoshare_sb.synthetic.compare23 import make_compare23_corpus
from emoshare_sb.training.feature_cache import (
    FeatureCache,
    encode_clips,
    to_encoder_layout,
)
from emoshare_sb.training.feature_cache.building import CacheBuilder

# float16 keeps 11 significant bits: relative error <= 2**-11.
FP16 = {"rtol": 2e-3, "atol": 2e-3}


@pytest.fixture
def clips(tmp_path):
    """Five clips of 1.2-4 s as (id, wav, duration), in a folder of their own."""
    root = make_compare23_corpus(str(tmp_path / "corpus"), 5, 0, 0, seed=7)
    paths = sorted(glob.glob(os.path.join(root, "wav", "*.wav")))
    return [
        (os.path.basename(p)[:-4], p, soundfile.info(p).duration) for p in paths
    ]


@pytest.fixture(scope="module")
def encoder(tiny_hubert, tmp_path_factory):
    return SSLEncoder(tiny_hubert, str(tmp_path_factory.mktemp("hub")))


def solo_features(encoder, wav_path):
    """The encoder's output for one clip encoded alone, time first."""
    wav = read_audio(wav_path)[None]
    with torch.no_grad():
        out = encoder(wav, torch.ones(1))
    return out[:, 0].permute(1, 0, 2) if out.ndim == 4 else out[0]


def test_round_trip_equals_encoder_output(encoder, clips, tmp_path):
    cache = FeatureCache(str(tmp_path / "cache"), encoder)
    stats = cache.build(clips, batch_seconds=8.0, progress=False)
    assert stats == {**stats, "requested": 5, "extracted": 5, "missing": 0}
    for clip_id, wav, _ in clips:
        expected = solo_features(encoder, wav)
        loaded = cache.load(clip_id)
        assert loaded.dtype == torch.float32
        assert loaded.shape == expected.shape  # unpadded: the clip's own frames
        torch.testing.assert_close(loaded, expected, **FP16)
        assert cache.entries[clip_id]["frames"] == cache.num_frames(
            read_audio(wav).shape[0]
        )
    shards = glob.glob(os.path.join(cache.folder, "*.safetensors"))
    assert shards and all(
        os.path.exists(s[: -len("safetensors")] + "json") for s in shards
    )
    # Reopened from disk (a later run), nothing to do and the same values.
    again = FeatureCache(str(tmp_path / "cache"), encoder)
    assert again.build(clips, progress=False)["extracted"] == 0
    assert torch.equal(again.load(clips[0][0]), cache.load(clips[0][0]))


def test_all_layers_and_layer_subset(tiny_hubert, clips, tmp_path):
    every = SSLEncoder(tiny_hubert, str(tmp_path), layer="all")
    full = FeatureCache(str(tmp_path / "cache"), every)
    subset = FeatureCache(str(tmp_path / "cache"), every, layers=[0, 2])
    full.build(clips[:2], progress=False)
    subset.build(clips[:2], progress=False)
    expected = solo_features(every, clips[0][1])  # [T, 3, 32]
    assert full.load(clips[0][0]).shape == expected.shape
    torch.testing.assert_close(full.load(clips[0][0]), expected, **FP16)
    torch.testing.assert_close(
        subset.load(clips[0][0]), expected[:, [0, 2]], **FP16
    )
    assert full.folder != subset.folder


def test_head_predictions_match_training_without_cache(
    encoder, clips, tmp_path
):
    """Padded cached batch -> pooling -> head equals each clip encoded alone."""
    cache = FeatureCache(str(tmp_path / "cache"), encoder)
    cache.build(clips, progress=False)
    dataset = sb.dataio.dataset.DynamicItemDataset(
        {clip_id: {"wav": wav} for clip_id, wav, _ in clips},
        dynamic_items=[cache.dynamic_item()],
        output_keys=["id", "feats"],
    )
    batch = sb.dataio.batch.PaddedBatch(
        [dataset[i] for i in range(len(dataset))]
    )
    features, lens = batch.feats
    torch.manual_seed(0)
    pooling, head = MaskedAttentivePooling(32), MLPHead(32, 9, hidden_size=16)
    with torch.no_grad():
        cached = head(pooling(to_encoder_layout(features), lens))
        solo = torch.cat(
            [
                head(pooling(solo_features(encoder, wav)[None], None))
                for _, wav, _ in clips
            ]
        )
    torch.testing.assert_close(cached, solo, **FP16)


def rewrite_audio(path, seed):
    data, rate = soundfile.read(path, dtype="float32")
    noise = (
        np.random.default_rng(seed).standard_normal(len(data)).astype("float32")
    )
    soundfile.write(
        path, 0.5 * noise / np.abs(noise).max(), rate, subtype="PCM_16"
    )


def test_changed_audio_file_reextracts_only_that_clip(encoder, clips, tmp_path):
    cache = FeatureCache(str(tmp_path / "cache"), encoder)
    cache.build(clips, progress=False)
    before = {clip_id: cache.load(clip_id) for clip_id, _, _ in clips}
    changed_id, changed_wav, _ = clips[2]
    rewrite_audio(changed_wav, seed=1)
    assert [item[0] for item in cache.pending(clips)] == [changed_id]
    assert cache.build(clips, progress=False)["extracted"] == 1
    for clip_id, wav, _ in clips:
        if clip_id == changed_id:
            assert not torch.allclose(cache.load(clip_id), before[clip_id])
            torch.testing.assert_close(
                cache.load(clip_id), solo_features(encoder, wav), **FP16
            )
        else:
            assert torch.equal(cache.load(clip_id), before[clip_id])
    # A new modification time alone is a change too (the file may have been replaced).
    os.utime(clips[0][1], ns=(1, 1))
    assert [item[0] for item in cache.pending(clips)] == [clips[0][0]]


@pytest.mark.parametrize(
    "change",
    [
        "weights",
        "layer",
        "layers",
        "output_norm",
        "sample_rate",
        "chunk_seconds",
        "dtype",
    ],
)
def test_each_setting_change_invalidates(change, tiny_hubert, clips, tmp_path):
    base_encoder = SSLEncoder(tiny_hubert, str(tmp_path))
    base = FeatureCache(str(tmp_path / "cache"), base_encoder)
    base.build(clips[:2], progress=False)
    encoder_kwargs, cache_kwargs = {}, {}
    if change == "layer":
        encoder_kwargs["layer"] = 1
    elif change == "layers":
        encoder_kwargs["layer"] = "all"
        cache_kwargs["layers"] = [2]
    elif change == "output_norm":
        encoder_kwargs["output_norm"] = True
    elif change == "sample_rate":
        cache_kwargs["sample_rate"] = 8000
    elif change == "chunk_seconds":
        cache_kwargs["chunk_seconds"] = 1.0
    elif change == "dtype":
        cache_kwargs["dtype"] = "float32"
    other_encoder = SSLEncoder(tiny_hubert, str(tmp_path), **encoder_kwargs)
    if change == "weights":
        with torch.no_grad():
            next(other_encoder.parameters()).add_(1e-3)
    other = FeatureCache(str(tmp_path / "cache"), other_encoder, **cache_kwargs)
    assert other.key != base.key
    assert other.build(clips[:2], progress=False)["extracted"] == 2
    # The original configuration is still cached and reused when switched back.
    assert (
        FeatureCache(str(tmp_path / "cache"), base_encoder).pending(clips[:2])
        == []
    )


def test_same_weights_from_another_load_share_the_cache(
    tiny_hubert, clips, tmp_path
):
    first = FeatureCache(
        str(tmp_path / "cache"), SSLEncoder(tiny_hubert, str(tmp_path))
    )
    second = FeatureCache(
        str(tmp_path / "cache"), SSLEncoder(tiny_hubert, str(tmp_path))
    )
    assert first.key == second.key


class Interrupt(Exception):
    """Stands for a kill in the middle of an extraction."""


def test_resume_after_interrupted_extraction(
    encoder, clips, tmp_path, monkeypatch
):
    folder = str(tmp_path / "cache")
    cache = FeatureCache(
        folder, encoder, shard_size_mb=1e-6
    )  # one shard per batch
    calls = []
    original = CacheBuilder.encode

    def encode_then_die(self, wavs, device):
        if len(calls) == 3:
            raise Interrupt
        calls.append(len(wavs))
        return original(self, wavs, device)

    monkeypatch.setattr(CacheBuilder, "encode", encode_then_die)
    with pytest.raises(Interrupt):
        cache.build(
            clips, batch_seconds=0.1, progress=False
        )  # one clip per batch
    monkeypatch.setattr(CacheBuilder, "encode", original)
    assert len(glob.glob(os.path.join(cache.folder, "shard-*.json"))) == 3
    # What a SIGKILL leaves behind: a temporary file and data without an
    # index, of a builder whose lock is free (dead), and of the older naming.
    dead = "0123456789ab"
    leftovers = [
        os.path.join(
            cache.folder, f".shard-r000-{dead}-00007.safetensors.x.tmp"
        ),
        os.path.join(cache.folder, f"shard-r000-{dead}-00008.safetensors"),
        os.path.join(cache.folder, ".shard-r000-00007.safetensors.abc.tmp"),
        os.path.join(cache.folder, "shard-r000-00008.safetensors"),
    ]
    for path in leftovers:
        with open(path, "wb") as handle:
            handle.write(b"half-written")

    resumed = FeatureCache(folder, encoder)
    stats = resumed.build(clips, progress=False)
    assert stats["extracted"] == 2 and stats["missing"] == 0
    assert not any(os.path.exists(path) for path in leftovers)
    fresh = FeatureCache(str(tmp_path / "fresh"), encoder)
    fresh.build(clips, progress=False)
    for clip_id, _, _ in clips:
        torch.testing.assert_close(
            resumed.load(clip_id), fresh.load(clip_id), **FP16
        )


def test_sharded_extraction_covers_every_clip_once(encoder, clips, tmp_path):
    folder = str(tmp_path / "cache")
    first = FeatureCache(folder, encoder).build(
        clips, shard_index=0, num_shards=2, progress=False
    )
    assert first["missing"] == 5 - first["extracted"] > 0
    second = FeatureCache(folder, encoder).build(
        clips, shard_index=1, num_shards=2, progress=False
    )
    assert (
        first["extracted"] + second["extracted"] == 5 and second["missing"] == 0
    )
    cache = FeatureCache(folder, encoder)
    assert sorted(cache.entries) == sorted(clip_id for clip_id, _, _ in clips)
    assert {entry["shard"][:10] for entry in cache.entries.values()} == {
        "shard-r000",
        "shard-r001",
    }


def test_manifest_input_and_training_crop(encoder, small_compare23, tmp_path):
    from emoshare_sb.data.compare23 import prepare_compare23

    save = str(tmp_path / "save")
    prepare_compare23(small_compare23, save, splits=("devel",))
    cache = FeatureCache(str(tmp_path / "cache"), encoder)
    assert (
        cache.build([os.path.join(save, "devel.csv")], progress=False)[
            "extracted"
        ]
        == 6
    )
    clip_id = next(iter(cache.entries))
    frames = cache.entries[clip_id]["frames"]
    crop = cache.dynamic_item(train_window=1.0)
    window = cache.num_frames(16000)
    assert crop(clip_id).shape[0] == min(window, frames)
    # A window longer than the clip keeps the whole clip, exactly as cached.
    assert torch.equal(
        cache.dynamic_item(train_window=30.0)(clip_id), cache.load(clip_id)
    )


def test_group_norm_encoder_batched_equals_alone(tmp_path):
    """Base-type models (GroupNorm front-end) are made padding-invariant."""
    import transformers

    config = transformers.HubertConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )
    assert config.feat_extract_norm == "group"
    torch.manual_seed(0)
    folder = str(tmp_path / "base")
    transformers.HubertModel(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(
        return_attention_mask=True
    ).save_pretrained(folder)
    encoder = SSLEncoder(folder, str(tmp_path))
    wavs = torch.randn(2, 24000)
    wavs[1, 9000:] = 0.0
    lens = torch.tensor([1.0, 9000 / 24000])
    with torch.no_grad():
        alone = encoder(wavs[1:, :9000], torch.ones(1))[0]
        # The raw HF model normalises over the padded batch (the problem)...
        mask = torch.ones(2, 24000, dtype=torch.long)
        mask[1, 9000:] = 0
        raw_alone = encoder.model(wavs[1:, :9000]).last_hidden_state[0]
        raw_batched = encoder.model(
            wavs, attention_mask=mask
        ).last_hidden_state[1]
        with padding_invariant(encoder.model):
            fixed = encoder.model(wavs, attention_mask=mask).last_hidden_state[
                1
            ]
        # ...the SSL lobe encodes under padding_invariant (the fix).
        batched = encoder(wavs, lens)[1, : alone.shape[0]]
    frames = raw_alone.shape[0]
    assert not torch.allclose(raw_batched[:frames], raw_alone, atol=1e-3)
    torch.testing.assert_close(fixed[:frames], raw_alone, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batched, alone, atol=1e-4, rtol=1e-4)
    clips = [wavs[0], wavs[1, :9000]]
    solo = encode_clips(encoder, clips, batch_seconds=0)
    together = encode_clips(encoder, clips, batch_seconds=10.0)
    for one, other in zip(solo, together, strict=True):
        torch.testing.assert_close(one, other, atol=1e-4, rtol=1e-4)
    assert not any(
        isinstance(m, torch.nn.Module)
        and type(m).__name__ == "_MaskedGroupNorm"
        for m in encoder.modules()
    )  # restored on exit


def test_refuses_trainable_encoder(tiny_hubert, tmp_path):
    with pytest.raises(ValueError, match="frozen"):
        FeatureCache(
            str(tmp_path), SSLEncoder(tiny_hubert, str(tmp_path), freeze=False)
        )


def test_missing_clip_names_the_fix(encoder, tmp_path):
    with pytest.raises(KeyError, match="build"):
        FeatureCache(str(tmp_path / "cache"), encoder).load("nope")


def test_chunked_extraction_concatenates_chunk_features(
    encoder, clips, tmp_path
):
    cache = FeatureCache(str(tmp_path / "cache"), encoder, chunk_seconds=1.0)
    cache.build(clips[:2], progress=False)
    for clip_id, wav_path, _ in clips[:2]:
        wav = read_audio(wav_path)
        starts = list(range(0, wav.shape[0], 16000))
        if wav.shape[0] - starts[-1] < 400:
            starts.pop()
        ends = starts[1:] + [wav.shape[0]]
        with torch.no_grad():
            expected = torch.cat(
                [
                    encoder(wav[None, s:e], torch.ones(1))[0]
                    for s, e in zip(starts, ends, strict=True)
                ]
            )
        torch.testing.assert_close(cache.load(clip_id), expected, **FP16)


def _distributed_build(
    rank, world_size, init_file, folder, source, items, queue
):
    import torch.distributed as dist

    # A forked child must not use the parent's OpenMP thread pool (it hangs).
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world_size,
    )
    try:
        encoder = SSLEncoder(source, folder)
        stats = FeatureCache(os.path.join(folder, "cache"), encoder).build(
            items, progress=False
        )
        queue.put((rank, stats["extracted"], stats["missing"]))
    finally:
        dist.destroy_process_group()


def test_torch_distributed_processes_share_the_work(
    tiny_hubert, clips, tmp_path
):
    """Two gloo processes (as under torchrun) split the clips and both see all."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [
        context.Process(
            target=_distributed_build,
            args=(
                rank,
                2,
                str(tmp_path / "init"),
                str(tmp_path),
                tiny_hubert,
                clips,
                queue,
            ),
        )
        for rank in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0]
    results = sorted(queue.get(timeout=5) for _ in processes)
    assert sum(extracted for _, extracted, _ in results) == len(clips)
    assert all(
        extracted > 0 and missing == 0 for _, extracted, missing in results
    )
    encoder = SSLEncoder(tiny_hubert, str(tmp_path))
    cache = FeatureCache(str(tmp_path / "cache"), encoder)
    with open(os.path.join(cache.folder, "index.json")) as handle:
        assert len(json.load(handle)["entries"]) == len(clips)


def test_pickled_cache_reads_without_the_encoder(encoder, clips, tmp_path):
    """DataLoader workers started with spawn get a light copy that still loads."""
    import pickle

    cache = FeatureCache(str(tmp_path / "cache"), encoder)
    cache.build(str_manifest(clips, tmp_path), progress=False)
    cache.load(clips[0][0])  # opens a memory map in this process
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.encoder is None
    assert torch.equal(copy.load(clips[0][0]), cache.load(clips[0][0]))


def str_manifest(clips, folder):
    """A one-manifest path (a str, not a list) with the ID, duration, wav columns."""
    path = str(folder / "clips.csv")
    with open(path, "w") as handle:
        handle.write("ID,duration,wav\n")
        for clip_id, wav, duration in clips:
            handle.write(f"{clip_id},{duration},{wav}\n")
    return path


_BUILD_SCRIPT = """
import sys, torch
from emoshare_sb.lobes.ssl import SSLEncoder
from emoshare_sb.training.feature_cache import FeatureCache
source, hub, folder, items = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
torch.set_num_threads(1)
items = [tuple(item.split("|")) for item in items]
cache = FeatureCache(folder, SSLEncoder(source, hub), shard_size_mb=1e-6)
stats = cache.build(items, batch_seconds=0.1, progress=False)
assert stats["missing"] == 0, stats
"""


def test_concurrent_builds_from_two_runs_leave_a_readable_cache(
    tiny_hubert, encoder, clips, tmp_path
):
    import subprocess
    import sys

    folder = str(tmp_path / "shared-cache")
    items = [f"{clip_id}|{wav}" for clip_id, wav, _ in clips]
    command = [
        sys.executable, "-c", _BUILD_SCRIPT, tiny_hubert, str(tmp_path), folder,
        *items,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    import time

    runs = [
        subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    ]
    # The second run starts while the first is writing shards (the case that
    # used to delete the first run's data before its index was written).
    deadline = time.monotonic() + 240
    while (
        not glob.glob(os.path.join(folder, "*", "shard-*.json"))
        and runs[0].poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    runs.append(
        subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    )
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr[-2000:]
    # A third run reads every clip (no FileNotFoundError, no re-extraction).
    reader = FeatureCache(folder, encoder, shard_size_mb=1e-6)
    assert reader.build(clips, progress=False)["extracted"] == 0
    for clip_id, wav, _ in clips:
        torch.testing.assert_close(
            reader.load(clip_id), solo_features(encoder, wav), **FP16
        )
    data = glob.glob(os.path.join(reader.folder, "shard-*.safetensors"))
    assert all(
        os.path.exists(p[: -len(".safetensors")] + ".json") for p in data
    )


def test_a_running_builders_unfinished_shard_is_not_removed(
    encoder, clips, tmp_path
):
    cache = FeatureCache(str(tmp_path / "cache"), encoder)
    other = FeatureCache(str(tmp_path / "cache"), encoder)
    os.makedirs(cache.folder)
    with cache.store.builder() as token:
        # Data written, index not yet: another run starting now must keep it.
        unfinished = os.path.join(
            cache.folder, f"shard-r000-{token}-00000.safetensors"
        )
        with open(unfinished, "wb") as handle:
            handle.write(b"data before its index")
        other.build(clips[:1], progress=False)
        assert os.path.exists(unfinished)
    # Once that builder is gone (killed), its leftover is cleaned up.
    other.build(clips[1:2], progress=False)
    assert not os.path.exists(unfinished)
