"""A checkpoint whose save was interrupted is not a checkpoint.

``Checkpointer.save_checkpoint`` writes ``CKPT.yaml`` (what makes a
directory a checkpoint) before the parameter files: a process killed
while saving leaves a checkpoint that is listed, ranked and resumed from
although its parameters are missing or half-written. Fails on SpeechBrain
1.1.2, passes with patch.diff.
"""

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer


class Interrupted(Exception):
    """Stands for the process being killed during a save."""


def interrupted_save(obj, path):
    """A save hook that writes half a file and stops."""
    with open(path, "wb") as handle:
        handle.write(b"\x80\x02half")
    raise Interrupted


def test_an_interrupted_save_leaves_no_checkpoint(tmp_path):
    model = torch.nn.Linear(2, 2)
    complete = Checkpointer(tmp_path, {"model": model})
    first = complete.save_checkpoint(meta={"score": 1.0})

    broken = Checkpointer(
        tmp_path,
        {"model": model, "optimizer": object()},
        custom_save_hooks={"optimizer": interrupted_save},
    )
    with pytest.raises(Interrupted):
        broken.save_checkpoint(meta={"score": 2.0})
    # Only the complete checkpoint is there, and it is the one resumed.
    assert [c.path for c in complete.list_checkpoints()] == [first.path]
    assert complete.find_checkpoint(max_key="score").path == first.path
    # A complete save still writes its meta file, and nothing temporary.
    second = complete.save_checkpoint(meta={"score": 3.0})
    assert sorted(p.name for p in second.path.iterdir()) == [
        "CKPT.yaml",
        "model.ckpt",
    ]
    assert second.meta["score"] == 3.0
    assert complete.find_checkpoint(max_key="score").path == second.path
