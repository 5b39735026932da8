"""The trainer's loader gathers a TensorDataset's batches whole: the same batches, in the same order, as the
per-sample DataLoader, for any sampler the loop uses."""

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from kernelnn.data.query_points import QueryPoints
from kernelnn.training import distributed as D
from kernelnn.training.trainer import ShardSampler, batch_loader


def batches(loader):
    return [tuple(part) for part in loader]


@pytest.mark.parametrize("sampler", ["distributed", "shard"])
@pytest.mark.parametrize("world", [1, 3])
def test_whole_batch_gather_matches_the_per_sample_loader(sampler, world):
    dataset = TensorDataset(torch.randn(103, 2, 5), torch.randint(0, 4, (103,)), torch.randn(103))
    def make(rank):
        if sampler == "distributed":
            return DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=7)
        return ShardSampler(len(dataset), D.DistInfo(rank=rank, world_size=world, local_rank=rank))

    for rank in range(world):
        fast, slow = batch_loader(dataset, make(rank), 16), DataLoader(dataset, batch_size=16, sampler=make(rank))
        assert len(fast) == len(slow)
        got, expected = batches(fast), batches(slow)
        assert len(got) == len(expected) > 1
        for a, b in zip(got, expected, strict=True):
            assert all(torch.equal(u, v) and u.dtype == v.dtype for u, v in zip(a, b, strict=True))


class Doubled(TensorDataset):
    def __getitem__(self, i: int):
        return (2 * float(self.tensors[0][i]),)  # float() of a batch would fail


def test_other_datasets_keep_the_per_sample_loader():
    fields = TensorDataset(torch.randn(6, 1, 8), torch.randn(6, 1, 8))
    loader = batch_loader(QueryPoints(fields, n_queries=3), ShardSampler(6, D.DistInfo(0, 1, 0)), 4)
    (u, coords), values = next(iter(loader))
    assert u.shape == (4, 1, 8) and coords.shape == (4, 3, 1) and values.shape == (4, 3, 1)
    # A TensorDataset subclass may index its own way: it is asked sample by sample, as DataLoader would.
    x = torch.arange(5.0)
    (batch,) = next(iter(batch_loader(Doubled(x), ShardSampler(5, D.DistInfo(0, 1, 0)), 5)))
    assert torch.equal(batch, 2 * x.double())
