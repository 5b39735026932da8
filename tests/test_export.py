"""kernelnn.export: .pt2 programs with dynamic batch and spatial sizes, ONNX where ONNX can express the model."""

import pytest
import torch

import kernelnn
from kernelnn.exporting import ExportError
from kernelnn.models import CNN, FNO, MLP, EquivariantNet, MgNO


def small_models():
    torch.manual_seed(0)
    return {
        "fno": (FNO(1, 2, n_modes=(4, 4), hidden_channels=8, n_layers=2, projection_channels=8),
                [(3, 1, 16, 16), (2, 1, 24, 20)]),
        "mlp": (MLP(3, 2, hidden=[8]), [(5, 3), (1, 3)]),
        "cnn": (CNN(1, 4, channels=[4, 8], pooled_size=2), [(3, 1, 16, 16), (2, 1, 20, 24)]),
    }


def eager(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name", ["fno", "mlp", "cnn"])
def test_pt2_reloads_and_matches_eager_at_other_batch_sizes_and_resolutions(name, tmp_path):
    model, shapes = small_models()[name]
    model.train()
    path = tmp_path / f"{name}.pt2"
    kernelnn.export(model, torch.randn(1, *shapes[0][1:]), path)  # a batch of 1 still gives a dynamic batch
    assert model.training  # the caller's mode comes back
    loaded = torch.export.load(path).module()
    for shape in shapes:
        x = torch.randn(*shape)
        torch.testing.assert_close(loaded(x), eager(model, x), rtol=1e-5, atol=1e-6)


def test_pt2_keeps_the_models_limits_as_guards(tmp_path):
    model, _ = small_models()["fno"]
    kernelnn.export(model, torch.randn(2, 1, 16, 16), tmp_path / "fno.pt2")
    loaded = torch.export.load(tmp_path / "fno.pt2").module()
    with pytest.raises(Exception, match="Guard failed"):
        loaded(torch.randn(2, 2, 16, 16))  # channels are fixed by the weights


def test_onnx_runs_in_onnxruntime_at_other_batch_sizes_and_resolutions(tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    models = small_models()
    torch.manual_seed(0)
    cases = {
        "mlp": (models["mlp"][0], [(5, 3), (1, 3)]),
        # Adaptive pooling would be converted with the example's window: the CNN's image size is fixed.
        "cnn": (models["cnn"][0], [(3, 1, 16, 16), (1, 1, 16, 16)]),
        "mgno": (MgNO(1, 1, hidden_channels=4, n_layers=2, levels=2), [(2, 1, 16, 16), (3, 1, 12, 20)]),
    }
    for name, (model, shapes) in cases.items():
        kernelnn.export(model, torch.randn(*shapes[0]), tmp_path / f"{name}.onnx")
        session = ort.InferenceSession(str(tmp_path / f"{name}.onnx"))
        (inp,) = session.get_inputs()
        assert isinstance(inp.shape[0], str)  # dynamic batch
        if name == "cnn":
            assert inp.shape[1:] == [1, 16, 16]
        for shape in shapes:
            x = torch.randn(*shape)
            (out,) = session.run(None, {inp.name: x.numpy()})
            torch.testing.assert_close(torch.from_numpy(out), eager(model, x), rtol=1e-4, atol=1e-5)


def test_spectral_models_are_refused_for_onnx_with_a_clear_error(tmp_path):
    model, shapes = small_models()["fno"]
    with pytest.raises(ExportError, match="FNO cannot be exported to ONNX: its SpectralConv layers .* complex"):
        kernelnn.export(model, torch.randn(*shapes[0]), tmp_path / "fno.bin", format="onnx")
    assert not (tmp_path / "fno.bin").exists()


def test_errors(tmp_path):
    model, _ = small_models()["mlp"]
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match=r"cannot tell the format from path .*m\.pt'.*\['.onnx', '.pt2'\]"):
        kernelnn.export(model, x, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="format='tflite' is not one of"):
        kernelnn.export(model, x, tmp_path / "m.pt2", format="tflite")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got function"):
        kernelnn.export(lambda t: t, x, tmp_path / "m.pt2")
    with pytest.raises(TypeError, match="example_input must be a tensor or a tuple of tensors, got list"):
        kernelnn.export(model, [[1.0, 2.0, 3.0]], tmp_path / "m.pt2")
    with pytest.raises(ValueError, match=r"MLP: input must have shape \(\.\.\., 3\)"):
        kernelnn.export(model, torch.randn(2, 4), tmp_path / "m.pt2")
    forces = EquivariantNet(1, output="energy_forces", L=1, channels=4, layers=1)
    with pytest.raises(ExportError, match="computes forces by torch.autograd.grad inside forward"):
        kernelnn.export(forces, torch.randn(2, 4, 3), tmp_path / "lj.pt2")
    assert not list(tmp_path.iterdir())


def test_export_is_the_top_level_function():
    assert "export" in kernelnn.__all__ and callable(kernelnn.export)


def test_tracing_first_leaves_no_fake_tensors_in_the_gaunt_plan_caches():
    """Non-strict torch.export runs the Python code under fake tensors; the cached Gaunt plans must stay real."""
    from kernelnn.layers import gaunt

    for plan in (gaunt._grid_plan, gaunt._fourier_plan, gaunt.gaunt_coefficients):
        plan.cache_clear()
    torch.manual_seed(0)
    net = EquivariantNet(3, L=1, channels=4, layers=1).eval()
    positions = torch.randn(2, 5, 3)
    dims = {i: torch.export.Dim.AUTO for i in range(3)}
    program = torch.export.export(net, (positions,), dynamic_shapes=(dims,))  # before any eager call
    assert gaunt._grid_plan.cache_info().currsize > 0
    with torch.no_grad():
        out = net(positions)
    assert type(out) is torch.Tensor
    torch.testing.assert_close(program.module()(positions), out)


def operator_families():
    """DeepONet, Transform Once and the U-Nets with the shapes their programs accept: the batch is always dynamic;
    the grid where the model's arithmetic allows (a DeepONet's sensors, T1's rescaling and the operator U-Net's
    pixel kernels depend on the grid, so their programs keep the example's grid as a guard)."""
    from kernelnn.models import DeepONet, TransformOnce, UNet

    torch.manual_seed(0)
    t1 = {"n_modes": 3, "hidden_channels": 4, "n_layers": 2, "head_channels": 8, "resolution": [16, 16]}
    return {
        "t1": (TransformOnce(1, 1, **t1), [(2, 1, 16, 16), (3, 1, 16, 16)]),
        "t1_fft": (TransformOnce(1, 1, transform="fft", **t1), [(2, 1, 16, 16), (3, 1, 16, 16)]),
        "deeponet": (DeepONet(64, 2, width=8, branch_depth=2, trunk_depth=2), [(2, 1, 8, 8), (5, 1, 8, 8)]),
        "uno": (UNet(1, 1, hidden_channels=4, levels=2, resolution=[16, 16]), [(2, 1, 16, 16), (3, 1, 16, 16)]),
        "unet": (UNet(1, 1, hidden_channels=4, levels=2, operator=False), [(2, 1, 16, 16), (3, 1, 24, 20)]),
    }


@pytest.mark.parametrize("name", ["t1", "t1_fft", "deeponet", "uno", "unet"])
def test_operator_families_export_to_pt2(name, tmp_path):
    model, shapes = operator_families()[name]
    kernelnn.export(model, torch.randn(*shapes[0]), tmp_path / f"{name}.pt2")
    loaded = torch.export.load(tmp_path / f"{name}.pt2").module()
    for shape in shapes:
        x = torch.randn(*shape)
        torch.testing.assert_close(loaded(x), eager(model, x), rtol=1e-5, atol=1e-6)
    if name in ("t1", "uno"):
        with pytest.raises(Exception, match="Guard failed"):
            loaded(torch.randn(2, 1, 32, 32))  # the grid is part of the program


def test_operator_families_in_onnxruntime_or_refused(tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    families = operator_families()
    for name in ("t1", "deeponet", "unet"):
        model, shapes = families[name]
        kernelnn.export(model, torch.randn(*shapes[0]), tmp_path / f"{name}.onnx")
        session = ort.InferenceSession(str(tmp_path / f"{name}.onnx"))
        (inp,) = session.get_inputs()
        x = torch.randn(*shapes[1])
        (out,) = session.run(None, {inp.name: x.numpy()})
        torch.testing.assert_close(torch.from_numpy(out), eager(model, x), rtol=1e-4, atol=1e-5)
    for name in ("t1_fft", "uno"):  # complex FFT coefficients: no ONNX
        model, shapes = families[name]
        with pytest.raises(ExportError, match="does not convert to ONNX"):
            kernelnn.export(model, torch.randn(*shapes[0]), tmp_path / f"{name}.onnx")


def test_a_trained_checkpoint_exports_and_matches_the_eager_model(tmp_path):
    """The README's path: train, load_model on best.pt, export; the program equals the eager model at the
    training grid and at twice it, at other batch sizes."""
    from kernelnn.training import load_model, run
    from tests.conftest import tiny_darcy_config

    summary = run(tiny_darcy_config("trainer.epochs=2"), output_dir=tmp_path / "run")
    model = load_model(summary["best_checkpoint"])
    kernelnn.export(model, torch.randn(2, 1, 16, 16), tmp_path / "darcy.pt2")
    loaded = torch.export.load(tmp_path / "darcy.pt2").module()
    for shape in [(2, 1, 16, 16), (5, 1, 32, 32)]:
        x = 3 + 9 * torch.rand(*shape)
        torch.testing.assert_close(loaded(x), eager(model, x), rtol=1e-5, atol=1e-6)
