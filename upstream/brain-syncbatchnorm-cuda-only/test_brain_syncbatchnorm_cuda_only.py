"""A ``Brain`` with BatchNorm trains under DDP on CPU (the gloo backend).

``Brain._wrap_distributed`` converts every BatchNorm to SyncBatchNorm under
DDP, and SyncBatchNorm refuses CPU tensors ("SyncBatchNorm expected input
tensor to be on GPU"), so ``torchrun`` on CPU fails for any model with
BatchNorm (ECAPA-TDNN, x-vectors, CRDNN). A single-process gloo group is
enough to show it. Fails on SpeechBrain 1.1.2, passes with patch.diff.
"""

import socket

import pytest
import speechbrain as sb
import torch
from speechbrain.utils.distributed import ddp_init_group


class TinyBrain(sb.Brain):
    """Regression with a BatchNorm layer."""

    def compute_forward(self, batch, stage):
        """The model's output for a batch of inputs."""
        inputs, _ = batch
        return self.modules.model(inputs.to(self.device))

    def compute_objectives(self, predictions, batch, stage):
        """Mean squared error."""
        _, targets = batch
        return torch.nn.functional.mse_loss(
            predictions, targets.to(self.device)
        )


@pytest.fixture
def single_process_group(monkeypatch):
    """A one-process gloo group, as ``torchrun --nproc_per_node 1`` makes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name, value in {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }.items():
        monkeypatch.setenv(name, value)
    ddp_init_group({"distributed_backend": "gloo"})
    yield
    torch.distributed.destroy_process_group()


def test_batchnorm_model_trains_with_ddp_on_cpu(single_process_group, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)
    )
    data = torch.utils.data.TensorDataset(torch.randn(8, 3), torch.randn(8, 1))
    brain = TinyBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.SGD(params, lr=0.1),
        run_opts={"device": "cpu", "distributed_backend": "gloo"},
    )
    assert brain.distributed_launch
    brain.fit(
        range(1),
        torch.utils.data.DataLoader(data, batch_size=4),
        progressbar=False,
    )
    wrapped = brain.modules.model
    assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
    assert isinstance(wrapped.module[1], torch.nn.BatchNorm1d)
    assert not isinstance(wrapped.module[1], torch.nn.SyncBatchNorm)
    assert brain.optimizer_step == 2
