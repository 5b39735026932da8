"""Wrap a model with fixed input/output standardisation, so a trained model works on raw data."""

from __future__ import annotations

import torch
from torch import nn

from kernelnn.layers.input_checks import check_float_tensor


class Normalized(nn.Module):
    """``decode(model(encode(x)))`` with per-channel statistics stored as (persistent) buffers.

    ``encode(x) = (x - in_mean) / in_std`` and ``decode(y) = y * out_std + out_mean``, the statistics taken
    per channel over the training set (scalars per channel, so the wrapper is resolution-independent).
    Channels are dim 1 for fields ``(batch, channels, *spatial)`` and the last dim for feature vectors.
    Pass ``None`` to skip either side. The buffers are data, not derived state: they are saved.
    """

    def __init__(
        self,
        model: nn.Module,
        in_mean: torch.Tensor | None = None,
        in_std: torch.Tensor | None = None,
        out_mean: torch.Tensor | None = None,
        out_std: torch.Tensor | None = None,
        channel_dim: int = 1,
    ) -> None:
        super().__init__()
        self.model = model
        self.channel_dim = channel_dim
        for name, value in (("in_mean", in_mean), ("in_std", in_std), ("out_mean", out_mean), ("out_std", out_std)):
            self.register_buffer(name, None if value is None else torch.as_tensor(value, dtype=torch.float32))

    def _shape(self, stat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.channel_dim == -1 or x.dim() == 1:
            return stat.to(x.dtype)
        return stat.to(x.dtype).view(-1, *([1] * (x.dim() - 2)))

    def check_input(self, x: torch.Tensor, *queries: torch.Tensor) -> None:
        """A float tensor, with the channel count the statistics were taken over, then the wrapped model's input
        check (its errors re-raised naming ``Normalized`` too)."""
        check_float_tensor(x, "Normalized")
        if self.in_mean is not None and x.dim() >= 2 and self.in_mean.numel() > 1 \
                and x.shape[self.channel_dim] != self.in_mean.numel():
            raise ValueError(f"Normalized: input has {x.shape[self.channel_dim]} channels along dim "
                             f"{self.channel_dim}; its statistics are for {self.in_mean.numel()}")
        check = getattr(self.model, "check_input", None)
        if callable(check):
            try:
                check(x, *queries)
            except (TypeError, ValueError) as error:
                raise type(error)(f"Normalized({type(self.model).__name__}): {error}") from error

    def normalize_target(self, y: torch.Tensor) -> torch.Tensor:
        """Targets ``y`` as the wrapped model is trained to output them (the inverse of the output scaling)."""
        if self.out_mean is None:
            return y
        return (y - self._shape(self.out_mean, y)) / self._shape(self.out_std, y)

    def forward(self, x: torch.Tensor, *queries: torch.Tensor) -> torch.Tensor:
        """``queries`` (e.g. DeepONet's query coordinates) pass through unchanged; the answer at query points is
        ``(batch, n_queries, channels)``, channels last."""
        self.check_input(x, *queries)
        if self.in_mean is not None:
            x = (x - self._shape(self.in_mean, x)) / self._shape(self.in_std, x)
        y = self.model(x, *queries)
        if self.out_mean is not None:
            if queries:
                y = y * self.out_std.to(y.dtype) + self.out_mean.to(y.dtype)
            else:
                y = y * self._shape(self.out_std, y) + self._shape(self.out_mean, y)
        return y
