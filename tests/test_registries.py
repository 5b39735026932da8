"""Registry-driven test matrices: every entry of every registry in kernelnn.registry is built from the example its
registration carries (:meth:`Registry.example`), run forward and backward, and round-tripped through its
state_dict. Nothing here lists entry names: a new entry, or a new registry declared in kernelnn.registry, is
tested as soon as it is registered."""

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import kernelnn.layers  # noqa: F401  (registers the layer entries)
import kernelnn.models  # noqa: F401  (registers the models)
from kernelnn import registry
from kernelnn.layers.kernel_conv import DISTANCES, KERNELS
from kernelnn.registry import CONVOLUTIONS, MODELS, NEURONS, Registry
from kernelnn.testing import assert_autocast, assert_compiles, assert_gradcheck, assert_state_dict_round_trip

REGISTRIES = {name: value for name, value in vars(registry).items() if isinstance(value, Registry)}
ENTRIES = [pytest.param(kind, name, id=f"{kind}-{name}") for kind, reg in REGISTRIES.items() for name in reg.names()]
LAYER_ENTRIES = [entry for entry in ENTRIES if entry.values[0] != "MODELS"]
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "model"


def example(kind: str, name: str, seed: int = 0):
    torch.manual_seed(seed)
    module, inputs = REGISTRIES[kind].example(name)
    assert isinstance(module, nn.Module), f"{kind}[{name!r}].example() built a {type(module).__name__}"
    return module, inputs


def test_the_registries_are_found_and_filled():
    assert {"ACTIVATIONS", "NEURONS", "CONVOLUTIONS", "SKIPS", "SPECTRAL_WEIGHTS", "MODELS"} <= set(REGISTRIES)
    assert all(len(reg) > 0 for reg in REGISTRIES.values())


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
def test_forward_backward_reach_every_parameter(kind, name):
    module, inputs = example(kind, name)
    inputs = tuple(x.requires_grad_() if x.is_floating_point() else x for x in inputs)
    out = module(*inputs)
    assert isinstance(out, torch.Tensor) and out.numel() > 0
    assert torch.isfinite(out).all(), f"{kind}[{name!r}]: non-finite output"
    (out * torch.randn_like(out)).sum().backward()
    for i, x in enumerate(inputs):
        if x.is_floating_point():
            assert x.grad is not None and torch.isfinite(x.grad).all(), f"{kind}[{name!r}]: gradient of input {i}"
    grads = {n: p.grad for n, p in module.named_parameters() if p.requires_grad}
    missing = [n for n, g in grads.items() if g is None]
    assert not missing, f"{kind}[{name!r}]: no gradient reaches {missing}"
    assert all(torch.isfinite(g).all() for g in grads.values()), f"{kind}[{name!r}]: non-finite parameter gradient"
    if grads:
        assert any(g.abs().sum() > 0 for g in grads.values()), f"{kind}[{name!r}]: every parameter gradient is zero"


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
def test_state_dict_round_trip(kind, name):
    _, inputs = example(kind, name)
    assert_state_dict_round_trip(lambda: REGISTRIES[kind].example(name)[0], *inputs)


@pytest.mark.parametrize(("kind", "name"), ENTRIES)
def test_autocast_bfloat16(kind, name):
    # Layers return bfloat16, or float32 where a fragile part (a distance, a kernel) keeps the output in float32.
    module, inputs = example(kind, name)
    assert_autocast(module, *inputs, output_dtype=(torch.bfloat16, torch.float32))


@pytest.mark.slow  # about 30 s for all entries together
@pytest.mark.parametrize(("kind", "name"), ENTRIES)
def test_torch_compile_matches_eager(kind, name):
    # aot_eager: dynamo tracing and AOT autograd (where layers break), without inductor's code generation.
    module, inputs = example(kind, name)
    assert_compiles(module, *inputs, backend="aot_eager")


@pytest.mark.parametrize(("kind", "name"), LAYER_ENTRIES)
def test_gradcheck_layers(kind, name):
    # fast_mode: one random projection of the Jacobian instead of all of it, enough to catch a wrong backward.
    module, inputs = example(kind, name)
    assert_gradcheck(module, *inputs, fast_mode=True)


def test_every_kernel_is_registered_as_a_convolution_and_a_neuron():
    for kernel in KERNELS:
        name = f"distance_{kernel}" if kernel in DISTANCES else kernel
        assert name in CONVOLUTIONS
        assert name in NEURONS  # "linear" is nn.Linear (with kernelnn's input check)
    assert issubclass(NEURONS.get("linear"), nn.Linear)


def test_every_model_config_targets_the_registered_model():
    configs = sorted(CONFIG_DIR.glob("*.yaml"))
    assert configs
    targets = MODELS.targets()
    for path in configs:
        target = yaml.safe_load(path.read_text())["_target_"]
        assert path.stem in MODELS, f"configs/model/{path.name} has no MODELS entry named {path.stem!r}"
        assert target in targets, f"configs/model/{path.name}: {target} is not a registered model"
        module, _, attr = target.rpartition(".")
        assert getattr(__import__(module, fromlist=[attr]), attr) is MODELS.get(path.stem)


def test_models_targets_are_the_import_paths_of_registered_classes():
    targets = MODELS.targets()
    assert {"kernelnn.models.fno.FNO", "kernelnn.models.FNO", "kernelnn.FNO", "kernelnn.models.MGPatching",
            "kernelnn.models.patching.MGPatching", "kernelnn.models.Normalized"} <= targets
    assert "torch.nn.Linear" not in targets and "os.system" not in targets
    for name in ["fno", "tfno", "mgno", "sfno", "stfno", "mlp", "cnn", "kan", "frame_cnn", "equivariant",
                 "mg_patching", "normalized"]:
        assert name in MODELS


# ------------------------------------------------------------------------------------------------ Registry
class Tiny(nn.Module):
    def __init__(self, width: int, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width, bias=bias)

    def forward(self, x):
        return self.linear(x)


def tiny_example(factory, **options):
    return factory(4, **options), (torch.randn(2, 4),)


def tiny_wrapped():
    return nn.Sequential(Tiny(3)), (torch.randn(1, 3),)


def test_registry_examples_targets_and_errors():
    reg = Registry("thing", example=tiny_example)
    assert reg.register("tiny")(Tiny) is Tiny  # the decorator returns the class
    reg.register("no_bias", example={"bias": False})(Tiny)
    reg.register("wrapped", example=tiny_wrapped)(nn.Sequential)
    module, inputs = reg.example("tiny")
    assert module(*inputs).shape == (2, 4) and module.linear.bias is not None
    assert reg.example("no_bias")[0].linear.bias is None
    assert reg.example("wrapped")[1][0].shape == (1, 3)
    assert reg.names() == ["no_bias", "tiny", "wrapped"] and list(reg) == reg.names() and len(reg) == 3
    assert f"{__name__}.Tiny" in reg.targets() and "torch.nn.modules.container.Sequential" in reg.targets()
    assert "torch.nn.Sequential" in reg.targets()  # re-exported by the already imported parent package
    with pytest.raises(ValueError, match=r"thing registry: the name 'tiny' is already taken by .*\.Tiny"):
        reg.register("tiny")(nn.Linear)
    reg.register("tiny")(Tiny)  # registering the same object again is harmless
    with pytest.raises(ValueError, match=r"Owner: kind='huge' is not a known thing; valid: no_bias, tiny, wrapped"):
        reg.build("huge", owner="Owner", argument="kind")
    bare = Registry("bare")
    bare.register("tiny")(Tiny)
    with pytest.raises(ValueError, match="bare registry: 'tiny' has no example"):
        bare.example("tiny")
    with pytest.raises(TypeError, match="example for 'x' must be a dict or a function"):
        reg.register("x", example=3)
