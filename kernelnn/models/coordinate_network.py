"""A coordinate network: a positional encoding, then a network; ``(..., in_features) -> (..., out_features)``.

The cross product that Rußwurm et al. (2024) compare, {spherical harmonics, double Fourier sphere, raw lon/lat} x
{SIREN, MLP, linear}, and the image baselines of the neural-field papers (a ReLU MLP on raw coordinates, a Fourier-
feature MLP, SIREN) are each one ``CoordinateNetwork``: the encoding is a name from
:data:`kernelnn.registry.ENCODINGS`, the network one of ``"siren"``, ``"mlp"``, ``"linear"``.
"""

from __future__ import annotations

import torch
from torch import nn

from kernelnn.layers.input_checks import check_positive_ints
from kernelnn.layers.siren import Siren
from kernelnn.models.mlp import MLP
from kernelnn.registry import ENCODINGS

NETWORKS = ("siren", "mlp", "linear")


class CoordinateNetwork(nn.Module):
    """``encoding`` then ``network``.

    Parameters
    ----------
    in_features, out_features : int
        Coordinate and value dimensions (2 for (longitude, latitude) encodings).
    encoding : str
        A name from :data:`kernelnn.registry.ENCODINGS` (``"identity"``, ``"fourier_features"``,
        ``"spherical_harmonics"``, ``"double_fourier_sphere"``, ``"lonlat"``).
    encoding_options : dict, optional
        Keyword arguments of the encoding (e.g. ``{"L": 10}``, ``{"n_frequencies": 256, "sigma": 10}``);
        ``in_features`` is passed to encodings that take it.
    network : str
        ``"siren"`` (:class:`~kernelnn.layers.Siren`), ``"mlp"`` (:class:`~kernelnn.models.MLP`) or ``"linear"``.
    hidden_features, n_layers : int
        Width and number of hidden layers of the SIREN or MLP (ignored by ``"linear"``).
    activation : str
        The MLP's activation.
    first_omega_0, hidden_omega_0 : float
        The SIREN's frequency factors.
    """

    def __init__(self, in_features: int, out_features: int, encoding: str = "identity",
                 encoding_options: dict | None = None, network: str = "siren", hidden_features: int = 256,
                 n_layers: int = 3, activation: str = "relu", first_omega_0: float = 30.0,
                 hidden_omega_0: float = 30.0) -> None:
        super().__init__()
        check_positive_ints("CoordinateNetwork", in_features=in_features, out_features=out_features,
                            hidden_features=hidden_features, n_layers=n_layers)
        if network not in NETWORKS:
            raise ValueError(f"CoordinateNetwork: network={network!r} is not one of {list(NETWORKS)}")
        options = dict(encoding_options or {})
        factory = ENCODINGS.get(encoding, owner="CoordinateNetwork", argument="encoding")
        fixed = getattr(factory, "in_features", None)
        if fixed is None:
            options.setdefault("in_features", in_features)
            if options["in_features"] != in_features:
                raise ValueError(f"CoordinateNetwork: encoding_options in_features={options['in_features']} differs "
                                 f"from in_features={in_features}")
        elif fixed != in_features:
            raise ValueError(f"CoordinateNetwork: encoding={encoding!r} reads {fixed} coordinates "
                             f"(longitude, latitude), but in_features={in_features}")
        self.encoding = factory(**options)
        self.in_features, self.out_features, self.network_name = in_features, out_features, network
        width = self.encoding.out_features
        if network == "siren":
            self.network = Siren(width, out_features, hidden_features, n_layers, first_omega_0, hidden_omega_0)
        elif network == "mlp":
            self.network = MLP(width, out_features, hidden=[hidden_features] * n_layers, activation=activation)
        else:
            self.network = nn.Linear(width, out_features)

    def extra_repr(self) -> str:
        return f"network={self.network_name!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return self.network(self.encoding(x))
        except (ValueError, TypeError) as err:  # the part's own message, said by the model the user called
            raise type(err)(f"CoordinateNetwork: {err}") from None

