"""`import kernelnn` stays light: heavy optional machinery is imported where it is first used (no timing here)."""

import subprocess
import sys

import torch

HEAVY = ["torch_harmonics", "torch._dynamo", "torch._inductor", "torch.onnx", "onnx", "onnxscript", "omegaconf",
         "hydra", "matplotlib"]


def modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_kernelnn_loads_no_heavy_module():
    loaded = modules_loaded_by("import kernelnn")
    assert "kernelnn.layers.spherical" in loaded and "kernelnn.layers.gaunt" in loaded  # the lazy ones are there
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_lazy_imports_happen_on_first_use():
    loaded = modules_loaded_by("import torch, kernelnn\n"
                               "kernelnn.layers.SphericalConv(1, 1, 2)(torch.randn(1, 1, 8, 16))\n"
                               "kernelnn.models.EquivariantNet(2, L=1, channels=2, layers=1)")
    assert {"torch_harmonics", "torch._dynamo"} <= loaded


def test_the_compile_constant_marker_is_torchs():
    """kernelnn.layers.gaunt marks its plans as torch.compiler.assume_constant_result does, without importing dynamo:
    the decorator must still do nothing but set that attribute."""
    from kernelnn.layers.gaunt import _assume_constant_result

    def ours():
        return 0

    def theirs():
        return 0

    _assume_constant_result(ours)
    assert torch.compiler.assume_constant_result(theirs) is theirs
    added = set(vars(theirs))
    assert added == set(vars(ours)) == {"_dynamo_marked_constant"} and theirs._dynamo_marked_constant is True
