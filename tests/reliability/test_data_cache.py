"""The data cache is reused only when it is whole, and written by the same generator version with the same
parameters; anything else is regenerated with a warning."""

import logging

import torch

from kernelnn.data.bundle import cached


def make(calls):
    def build():
        calls.append(1)
        return {"u": torch.arange(4000.0), "a": torch.ones(3)}
    return build


def test_cache_is_reused_then_regenerated_when_damaged_or_stale(tmp_path, caplog):
    calls = []
    first = cached("toy", {"n": 4}, make(calls), tmp_path)
    again = cached("toy", {"n": 4}, make(calls), tmp_path)
    assert len(calls) == 1 and torch.equal(first["u"], again["u"])
    (path,) = tmp_path.glob("toy-*.pt")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped bit inside the tensor data: torch.load alone would not notice
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        regenerated = cached("toy", {"n": 4}, make(calls), tmp_path)
    assert len(calls) == 2 and "does not match its checksum" in caplog.text
    assert torch.equal(regenerated["u"], first["u"])
    path.write_bytes(path.read_bytes()[:100])  # truncated
    cached("toy", {"n": 4}, make(calls), tmp_path)
    assert len(calls) == 3
    cached("toy", {"n": 4}, make(calls), tmp_path, version=2)  # the generator changed
    assert len(calls) == 4 and "does not match" in caplog.text
    torch.save({"u": torch.zeros(2)}, path)  # an old-style file without a manifest
    cached("toy", {"n": 4}, make(calls), tmp_path, version=2)
    assert len(calls) == 5 and "no manifest" in caplog.text
