"""kernelnn.interop.from_neuralop against the neuraloperator library itself (a dev dependency)."""

import warnings

import pytest
import torch

from kernelnn.interop import from_neuralop, neuralop_fno_kwargs
from kernelnn.layers.spectral import FullModesWarning
from kernelnn.models import FNO

neuralop_models = pytest.importorskip("neuralop.models")

CASES = {
    "defaults": dict(n_modes=(16, 16), hidden_channels=8),
    "padding-groupnorm": dict(n_modes=(8, 6), hidden_channels=8, domain_padding=0.25, norm="group_norm"),
    "odd-modes-instancenorm": dict(n_modes=(7, 9), hidden_channels=6, use_channel_mlp=False, fno_skip="soft-gating",
                                   norm="instance_norm", lifting_channel_ratio=0),
    "linear-mlp-skip-no-grid": dict(n_modes=(8, 8), hidden_channels=8, channel_mlp_skip="linear",
                                    positional_embedding=None),
    "identity-skip-no-mlp-skip": dict(n_modes=(6, 6), hidden_channels=8, fno_skip="identity", channel_mlp_skip=None),
    "1d": dict(n_modes=(10,), hidden_channels=8, in_channels=2, out_channels=3),
    "3d": dict(n_modes=(6, 6, 4), hidden_channels=4, domain_padding=[0.0, 0.0, 0.25]),
}


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours - theirs).norm() / theirs.norm()).item()


def outputs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FullModesWarning)
        return model(x)


@pytest.mark.parametrize("factorization", [None, "tucker"])
@pytest.mark.parametrize("case", CASES)
def test_converted_model_matches_at_training_resolution_and_twice(case, factorization):
    torch.manual_seed(0)
    kwargs = {"in_channels": 1, "out_channels": 1, **CASES[case]}
    if factorization:
        kwargs.update(factorization="tucker", rank=0.3)
    theirs = neuralop_models.FNO(**kwargs).eval()
    with torch.no_grad():  # off the initial values (soft-gating 1, norms 1 and 0 are kernelnn's too): copies tested
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = from_neuralop(theirs)
    assert isinstance(ours, FNO) and not ours.training
    dim = len(kwargs["n_modes"])
    for n in (16, 32):  # the training resolution (n_modes up to 16 fits it) and twice it
        x = torch.randn(2, kwargs["in_channels"], *[n] * dim)
        expected = outputs(theirs, x)
        assert expected.abs().max() > 0
        assert relative_error(outputs(ours, x), expected) < 1e-5, (case, n)


def test_comparison_can_fail():
    """A converted model whose spectral weights of one layer are scaled by 1.01 no longer matches: the test above
    can fail."""
    torch.manual_seed(0)
    theirs = neuralop_models.FNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=8).eval()
    ours = from_neuralop(theirs)
    with torch.no_grad():
        ours.spectral[1].weight.weight.mul_(1.01)
    x = torch.randn(2, 1, 16, 16)
    assert relative_error(outputs(ours, x), outputs(theirs, x)) > 1e-5


def test_kwargs_rebuild_the_model_and_it_trains():
    torch.manual_seed(0)
    theirs = neuralop_models.TFNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=8, rank=0.2)
    ours = from_neuralop(theirs)
    rebuilt = FNO(**neuralop_fno_kwargs(theirs))
    rebuilt.load_state_dict(ours.state_dict())
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(outputs(rebuilt.eval(), x), outputs(ours.eval(), x))
    loss = ours.train()(x).square().mean()
    loss.backward()
    assert ours.spectral[0].weight.core.grad.abs().max() > 0


@pytest.mark.parametrize("option, value, match", [
    ("separable", True, "separable=True"),
    ("factorization", "cp", "factorization"),
    ("channel_mlp_dropout", 0.1, "channel_mlp_dropout=0.1"),
    ("preactivation", True, "preactivation=True"),
    ("norm", "batch_norm", "norm='BatchNorm'"),
    ("non_linearity", torch.nn.functional.elu, "non_linearity='elu'"),
    ("fno_skip", None, "fno_skip=None"),
    ("stabilizer", "tanh", "stabilizer='tanh'"),
    ("complex_data", True, "complex_data=True"),
    ("fno_block_precision", "mixed", "fno_block_precision='mixed'"),
    ("max_n_modes", (8, 8), r"max_n_modes=\(8, 8\)"),
])
def test_unsupported_options_are_named(option, value, match):
    theirs = neuralop_models.FNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=4, **{option: value})
    with pytest.raises(ValueError, match=f"from_neuralop: neuraloperator option {match}"):
        from_neuralop(theirs)


def test_not_a_neuralop_model():
    with pytest.raises(TypeError, match="expected a neuraloperator FNO or TFNO"):
        from_neuralop(FNO(1, 1, n_modes=(4, 4)))


def test_modes_changed_after_construction_are_refused():
    theirs = neuralop_models.FNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=4)
    theirs.n_modes = (6, 6)  # neuraloperator then uses a slice of weights stored for (8, 8)
    with pytest.raises(ValueError, match=r"this layer stores \[8, 5\] frequencies, not \[6, 4\]"):
        from_neuralop(theirs)
