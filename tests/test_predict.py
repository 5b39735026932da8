"""python -m kernelnn.predict: a trained checkpoint on .npz / .h5 inputs, at two resolutions, and its errors."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from kernelnn.predict import main
from kernelnn.training import load_model, run
from tests.conftest import ROOT, tiny_darcy_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    summary = run(tiny_darcy_config("trainer.epochs=1"), output_dir=tmp_path_factory.mktemp("run"))
    return str(summary["best_checkpoint"])


def predict_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kernelnn.predict", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def eager(checkpoint, x):
    with torch.no_grad():
        return load_model(checkpoint)(torch.as_tensor(x, dtype=torch.float32))


def test_predictions_match_the_eager_model_at_two_resolutions(checkpoint, tmp_path):
    gen = np.random.default_rng(0)
    # 16x16 (the training resolution) in an .npz with channels, float64 and a decoy array stored first.
    x16 = 3 + 9 * gen.random((5, 1, 16, 16))
    np.savez(tmp_path / "in16.npz", decoy=np.zeros(3), x=x16)
    # 32x32 in an .h5 as (n, *spatial) under another key (its only array, so the default): read as one channel.
    x32 = (3 + 9 * gen.random((3, 32, 32))).astype(np.float32)
    with h5py.File(tmp_path / "in32.h5", "w") as f:
        f["a"] = x32
    done = predict_cli(f"checkpoint={checkpoint}", f"input={tmp_path / 'in16.npz'}",
                       f"output={tmp_path / 'out16.npz'}", "batch_size=2")
    assert done.returncode == 0, done.stderr
    assert "Wrote predictions to" in done.stderr
    got16 = np.load(tmp_path / "out16.npz")["prediction"]
    torch.testing.assert_close(torch.from_numpy(got16), eager(checkpoint, x16), rtol=1e-5, atol=1e-6)

    done = predict_cli(f"checkpoint={checkpoint}", f"input={tmp_path / 'in32.h5'}", f"output={tmp_path / 'out32.h5'}",
                       "progress_bar=false", "device=cpu")
    assert done.returncode == 0, done.stderr
    with h5py.File(tmp_path / "out32.h5", "r") as f:
        got32 = f["prediction"][()]
    assert got32.shape == (3, 1, 32, 32)
    torch.testing.assert_close(torch.from_numpy(got32), eager(checkpoint, x32[:, None]), rtol=1e-5, atol=1e-6)


def test_pt_output_in_process(checkpoint, tmp_path):
    x = np.random.default_rng(1).random((4, 1, 16, 16)).astype(np.float32)
    torch.save({"x": torch.from_numpy(x)}, tmp_path / "in.pt")
    assert main([f"checkpoint={checkpoint}", f"input={tmp_path / 'in.pt'}", f"output={tmp_path / 'sub/out.pt'}",
                 "progress_bar=false"]) == 0
    got = torch.load(tmp_path / "sub/out.pt", weights_only=True)["prediction"]
    torch.testing.assert_close(got, eager(checkpoint, x))


def test_errors_print_one_line_and_exit_2(checkpoint, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", x=np.ones((2, 1, 16, 16)), wide=np.ones((2, 2, 16, 16)),
             coarse=np.ones((2, 1, 6, 6)))
    base = [f"checkpoint={checkpoint}", f"input={tmp_path / 'in.npz'}", f"output={tmp_path / 'out.npz'}"]
    cases = {
        "checkpoint='nope.pt' does not exist": ["checkpoint=nope.pt", *base[1:]],
        "data file 'nope.npz' does not exist": [base[0], "input=nope.npz", base[2]],
        "unknown suffix '.csv'; supported: .npz, .pt, .h5, .hdf5": [*base[:2], "output=out.csv"],
        "has no key(s) ['u']; available keys: ['x', 'wide', 'coarse']": [*base, "input_key=u"],
        "unknown option 'batchsize'; options: checkpoint, input, output": [*base, "batchsize=4"],
        "missing output=...": base[:2],
        "batch_size: Value 'many' of type 'str' could not be converted to Integer": [*base, "batch_size=many"],
        "the model does not take the input of shape (2, 2, 16, 16): Normalized(FNO): FNO: input has 2 channels, "
        "in_channels=1":
            [*base, "input_key=wide"],
        "FNO: n_modes=[4, 4] exceeds the Nyquist limit of a 6x6 input": [*base, "input_key=coarse"],
    }
    for message, args in cases.items():
        assert main(args) == 2, message
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("kernelnn.predict: error: "), err
        assert message in err, (message, err)
    assert not (tmp_path / "out.npz").exists()
    done = predict_cli(*base, "input_key=wide")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("kernelnn.predict: error: the model does not take the input")
