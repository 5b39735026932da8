r"""Delta activation layer: trained temporal sparsity (Yousefzadeh & Sifalakis, 2021).

On a sequence ``(batch, time, ...)`` the layer computes an activation :math:`a_t`, quantises it on a learnable
step :math:`\theta > 0`,

.. math:: q(a) = \operatorname{round}(a / \theta)\, \theta,

and returns the temporal differences :math:`\delta_t = q(a_t) - q(a_{t-1})` (with :math:`q(a_{-1}) = 0`), so that
a linear layer downstream can work on the mostly-zero deltas and accumulate its output over time
(:class:`~kernelnn.layers.delta_accumulate.DeltaLinear`, :class:`~kernelnn.layers.delta_accumulate.DeltaConv2d`).
The penalty :meth:`DeltaActivation.sparsity_loss` ``= fan_out * mean|delta|`` pushes deltas to zero; the trainer
adds it times ``trainer.delta_rate``.

Gradients follow the authors' code: ``round`` is straight-through (:math:`\partial q / \partial a = 1`) and the
step gets :math:`\partial q / \partial \theta = -\operatorname{round}(a / \theta)`, the *negative* of the
gradient with the rounding held fixed. With that sign the penalty :math:`\sum |\delta|` raises :math:`\theta`
(coarser steps, more zero deltas) instead of shrinking it. The step is :math:`|p|` of a parameter ``p``, kept
above ``min_threshold``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from kernelnn.registry import ACTIVATIONS

THRESHOLD_SHAPES = ("layer", "channel", "neuron")
OUTPUTS = ("delta", "quantized")


def delta_quantize(a: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    r"""``round(a / threshold) * threshold`` with the delta layer's gradients: ``1`` for ``a`` (straight
    through) and ``-round(a / threshold)`` for ``threshold`` (see the module docstring).

    ``threshold`` broadcasts against ``a`` and must be positive.
    """
    levels = torch.round(a / threshold.detach()).detach()
    step = threshold.detach()
    # Value: levels * threshold (2s - s and a - a are exact). Gradients: d/da = 1, d/dthreshold = -levels.
    return levels * (2 * step - threshold) + (a - a.detach())


class DeltaActivation(nn.Module):
    r"""Activation, quantisation on a learnable step, temporal difference.

    Parameters
    ----------
    activation : str, nn.Module, callable or None
        Applied first: a name from :data:`kernelnn.registry.ACTIVATIONS` (``"relu"``), a module or function, or
        ``None`` for the identity.
    threshold : float
        Initial quantisation step :math:`\theta > 0` (the paper's 0.1).
    threshold_shape : {"layer", "channel", "neuron"}
        One step for the layer, one per channel (the first dimension after time), or one per neuron (every
        element of a frame).
    features : int or sequence of int, optional
        Needed for ``"channel"`` (the number of channels) and ``"neuron"`` (the frame shape, e.g. ``(C, H, W)``).
    learn_threshold : bool
        Learn :math:`\theta` (as ``|p|``) or keep it fixed.
    output : {"delta", "quantized"}
        ``"delta"``: :math:`\delta_t`, for a consumer that accumulates (a ``DeltaLinear`` / ``DeltaConv2d``);
        ``"quantized"``: :math:`q(a_t)`, for layers downstream that are not linear.
    time_dim : int
        The time dimension of the input (the batch dimension is the first of the others).
    fan_out : float
        Multiply-accumulates each non-zero delta costs downstream; weights the penalty (the paper's
        ``n_outputs``).
    min_threshold : float
        Lower bound of :math:`\theta` (``|p|`` could otherwise reach zero).

    Shapes: ``(batch, time, *frame) -> (batch, time, *frame)`` (with ``time_dim=1``); :meth:`step` takes one
    frame ``(batch, *frame)``.

    Statistics: every forward (and :meth:`step`) adds to counters of elements, non-zero deltas and non-zero
    quantised activations; :meth:`statistics` reads them, :meth:`reset_statistics` zeroes them.

    Source: Yousefzadeh & Sifalakis, "Training for temporal sparsity in deep neural networks, application in
    video processing" (2021), and the authors' TensorFlow layer (step ``|p|``, initial 0.1, penalty
    ``rate * n_outputs * mean|delta|`` over the frames after the first).

    Example
    -------
    >>> layer = DeltaActivation("relu", threshold=0.1)
    >>> x = torch.randn(4, 8, 16)                    # (batch, time, features)
    >>> deltas = layer(x)
    >>> torch.allclose(deltas.cumsum(1), layer.quantize(torch.relu(x)))
    True
    """

    def __init__(self, activation: str | nn.Module | Callable | None = "relu", threshold: float = 0.1,
                 threshold_shape: str = "layer", features: int | Sequence[int] | None = None,
                 learn_threshold: bool = True, output: str = "delta", time_dim: int = 1, fan_out: float = 1.0,
                 min_threshold: float = 1e-6) -> None:
        super().__init__()
        if not (isinstance(threshold, int | float) and 0 < threshold < float("inf")):
            raise ValueError(f"DeltaActivation: threshold={threshold!r} must be a finite number > 0")
        if not 0 < min_threshold < threshold:
            raise ValueError(f"DeltaActivation: min_threshold={min_threshold!r} must be in (0, threshold)")
        if threshold_shape not in THRESHOLD_SHAPES:
            raise ValueError(f"DeltaActivation: threshold_shape={threshold_shape!r}; valid: "
                             f"{', '.join(THRESHOLD_SHAPES)}")
        if output not in OUTPUTS:
            raise ValueError(f"DeltaActivation: output={output!r}; valid: {', '.join(OUTPUTS)}")
        if not fan_out > 0:
            raise ValueError(f"DeltaActivation: fan_out={fan_out!r} must be > 0")
        if isinstance(time_dim, bool) or not isinstance(time_dim, int):
            raise ValueError(f"DeltaActivation: time_dim={time_dim!r} must be an int")
        if isinstance(activation, str):
            activation = ACTIVATIONS.build(activation, owner="DeltaActivation", argument="activation")
        self.activation = activation if activation is not None else nn.Identity()
        self.threshold_shape, self.output, self.time_dim = threshold_shape, output, time_dim
        self.fan_out, self.min_threshold = float(fan_out), float(min_threshold)
        self.features = self._threshold_size(threshold_shape, features)
        value = torch.full(self.features, float(threshold))
        if learn_threshold:
            self.threshold_parameter = nn.Parameter(value)
        else:
            self.register_buffer("threshold_parameter", value)
        self._last_delta: torch.Tensor | None = None
        self._state: torch.Tensor | None = None  # q(a) of the last streamed frame
        for name in ("count_elements", "count_nonzero_delta", "count_nonzero_quantized"):
            self.register_buffer(name, torch.zeros((), dtype=torch.int64), persistent=False)

    @staticmethod
    def _threshold_size(threshold_shape: str, features) -> tuple[int, ...]:
        if threshold_shape == "layer":
            return ()
        sizes = (features,) if isinstance(features, int) and not isinstance(features, bool) else features
        if (sizes is None or len(sizes) == 0
                or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)):
            raise ValueError(f"DeltaActivation: threshold_shape={threshold_shape!r} needs features= (channels for "
                             f"'channel', the frame shape for 'neuron') as positive ints, got {features!r}")
        if threshold_shape == "channel" and len(sizes) != 1:
            raise ValueError(f"DeltaActivation: threshold_shape='channel' needs features=<channels>, got {features!r}")
        return tuple(sizes)

    def extra_repr(self) -> str:
        return (f"threshold_shape={self.threshold_shape!r}, output={self.output!r}, time_dim={self.time_dim}, "
                f"fan_out={self.fan_out:g}, learn_threshold={isinstance(self.threshold_parameter, nn.Parameter)}")

    # ------------------------------------------------------------------------------------ quantisation
    def threshold(self) -> torch.Tensor:
        """The quantisation step ``max(|p|, min_threshold)``, shaped as ``features`` (``()`` per layer)."""
        return self.threshold_parameter.abs().clamp_min(self.min_threshold)

    def _frame_threshold(self, frame_dims: int) -> torch.Tensor:
        """The step shaped to broadcast over a frame with ``frame_dims`` dimensions (after batch and time)."""
        theta = self.threshold()
        if self.threshold_shape == "channel":
            return theta.reshape(-1, *([1] * (frame_dims - 1)))
        return theta

    def quantize(self, a: torch.Tensor) -> torch.Tensor:
        """``q(a)`` for activations ``(batch, time, *frame)`` (time first after batch)."""
        return delta_quantize(a, self._frame_threshold(a.dim() - 2).to(a.dtype))

    # ------------------------------------------------------------------------------------ sequence mode
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"DeltaActivation: input must be a floating-point tensor, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() < 3:
            raise ValueError(f"DeltaActivation: input must be (batch, time, ...) with at least one feature "
                             f"dimension, got shape {tuple(x.shape)}; for one frame use step()")
        if not -x.dim() <= self.time_dim < x.dim():
            raise ValueError(f"DeltaActivation: time_dim={self.time_dim} is out of range for input shape "
                             f"{tuple(x.shape)}")
        seq = x.movedim(self.time_dim, 1)
        self._check_frame(seq.shape[2:], "forward")
        q = self.quantize(self.activation(seq))
        delta = q - torch.cat([torch.zeros_like(q[:, :1]), q[:, :-1]], dim=1)
        self._last_delta = delta
        self._count(delta, q)
        out = delta if self.output == "delta" else q
        return out.movedim(1, self.time_dim)

    def sparsity_loss(self) -> torch.Tensor:
        """``fan_out * mean|delta|`` of the last forward, over the frames after the first (the first frame's
        delta is the whole frame; the authors leave it out); all frames for a one-frame sequence."""
        if self._last_delta is None:
            raise RuntimeError("DeltaActivation.sparsity_loss: run a forward pass first")
        delta = self._last_delta[:, 1:] if self._last_delta.shape[1] > 1 else self._last_delta
        return self.fan_out * delta.abs().mean()

    # ------------------------------------------------------------------------------------ streaming mode
    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One frame ``(batch, *frame)``: returns its delta against the previous frame's ``q(a)`` (zero after
        :meth:`reset`), or ``q(a)`` with ``output="quantized"``; frame by frame equal to :meth:`forward`."""
        if x.dim() < 2:
            raise ValueError(f"DeltaActivation.step: a frame must be (batch, ...), got shape {tuple(x.shape)}")
        self._check_frame(x.shape[1:], "step")
        q = self.quantize(self.activation(x).unsqueeze(1)).squeeze(1)
        previous = self._state
        if previous is None or previous.shape != q.shape:
            if previous is not None:
                raise ValueError(f"DeltaActivation.step: frame shape {tuple(q.shape)} differs from the previous "
                                 f"frame's {tuple(previous.shape)}; call reset() between sequences")
            previous = torch.zeros_like(q)
        delta = q - previous
        self._state = q.detach()
        self._count(delta, q)
        return delta if self.output == "delta" else q

    def reset(self) -> None:
        """Forget the streamed state (the next :meth:`step` starts a sequence)."""
        self._state = None

    # ------------------------------------------------------------------------------------ statistics
    def _check_frame(self, frame: torch.Size, where: str) -> None:
        if self.threshold_shape == "channel" and (len(frame) == 0 or frame[0] != self.features[0]):
            raise ValueError(f"DeltaActivation.{where}: threshold_shape='channel' expects {self.features[0]} "
                             f"channels right after the time dimension, got frames of shape {tuple(frame)}")
        if self.threshold_shape == "neuron" and tuple(frame) != self.features:
            raise ValueError(f"DeltaActivation.{where}: threshold_shape='neuron' expects frames of shape "
                             f"{self.features}, got {tuple(frame)}")

    @torch.no_grad()
    def _count(self, delta: torch.Tensor, q: torch.Tensor) -> None:
        self.count_elements += delta.numel()
        self.count_nonzero_delta += torch.count_nonzero(delta)
        self.count_nonzero_quantized += torch.count_nonzero(q)

    def reset_statistics(self) -> None:
        for counter in (self.count_elements, self.count_nonzero_delta, self.count_nonzero_quantized):
            counter.zero_()

    def statistics(self) -> dict[str, float]:
        """Fractions of non-zero deltas and of non-zero quantised activations since the last reset."""
        n = max(int(self.count_elements), 1)
        return {"delta_density": int(self.count_nonzero_delta) / n,
                "activation_density": int(self.count_nonzero_quantized) / n,
                "elements": int(self.count_elements)}


def replace_activations(model: nn.Module, types: type | tuple[type, ...] = nn.ReLU, **options) -> list[str]:
    """Replace every submodule of ``model`` that is an instance of ``types`` by a :class:`DeltaActivation`
    wrapping it (``options`` are its other arguments; default ``output="quantized"``, which keeps any
    downstream layer valid). The activations must see the time dimension (e.g. layers wrapped in
    :class:`~kernelnn.layers.time_distributed.TimeDistributed`). Returns the replaced modules' names."""
    options.setdefault("output", "quantized")
    replaced = []
    for name, module in list(model.named_modules()):
        if isinstance(module, DeltaActivation):
            continue
        for child_name, child in list(module.named_children()):
            if isinstance(child, types) and not isinstance(child, DeltaActivation):
                setattr(module, child_name, DeltaActivation(activation=child, **options))
                replaced.append(f"{name}.{child_name}" if name else child_name)
    return replaced


def delta_layers(model: nn.Module) -> dict[str, DeltaActivation]:
    """Every :class:`DeltaActivation` of ``model`` by name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, DeltaActivation)}
