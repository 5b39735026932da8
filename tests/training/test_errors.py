"""Bad input fails before training with a message that names the config key, the file, or the valid choices."""

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

from kernelnn.training import ConfigError, run
from tests.conftest import compose_config


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(MissingConfigException, match=r"(?s)Could not find 'model/transformer'.*fno.*mlp"):
        compose_config("model=transformer")


def test_unknown_data_name_lists_the_valid_ones():
    with pytest.raises(MissingConfigException, match=r"(?s)Could not find 'data/imagenet'.*burgers.*darcy"):
        compose_config("data=imagenet")


def test_typed_trainer_config_names_the_key_and_the_choices():
    """The trainer group is a structured config: Hydra checks types and choices while composing."""
    with pytest.raises(ConfigCompositionException, match="trainer.amp=fp8") as err:
        compose_config("trainer.amp=fp8")
    assert "expected one of [none, bf16, fp16]" in str(err.value.__cause__)
    with pytest.raises(ConfigCompositionException, match="trainer.epochs=many") as err:
        compose_config("trainer.epochs=many")
    assert "could not be converted to Integer" in str(err.value.__cause__)


def test_unknown_key_is_refused():
    with pytest.raises(ConfigCompositionException, match="trainer.epoch"):
        compose_config("trainer.epoch=3")


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.epochs=0", r"trainer.epochs=0 must be a positive integer"),
        ("trainer.batch_size=-4", r"trainer.batch_size=-4 must be a positive integer"),
        ("trainer.grad_clip=-1", r"trainer.grad_clip=-1(\.0)? must be a positive number"),
        ("trainer.loss=l3",
         r"trainer.loss='l3' is not valid for operator learning; valid: \('l2', 'h1', 'negative_sobolev'\)"),
        ("model.n_modes=9", r"model.n_modes=\[9, 9\] is above the Nyquist limit of the train data of darcy "
                            r"\(16x16, set by data.resolution / data.test_resolutions\): at most \[8, 8\]"),
        ("model.in_channels=3", r"model.in_channels=3 does not match data darcy, which has 1 input channels"),
        ("model.out_channels=2", r"model.out_channels=2 does not match data darcy"),
        ("model.activation=swish", r"activation='swish' is not a known activation; valid: gelu"),
        ("trainer.monitor=holdout/l2", r"trainer.monitor='holdout/l2' names no evaluation set"),
        ("trainer.monitor=val/accuracy", r"trainer.monitor='val/accuracy': the val set has no metric 'accuracy'"),
        ("trainer.monitor=test_16/l2", r"trainer.monitor='test_16/l2' is a test set, evaluated every "
                                       r"trainer.test_every=5 epochs"),
        ("trainer.device=meta", r"trainer.device='meta': kernelnn trains on auto, cpu or cuda"),
        ("trainer.device=gpu7", r"trainer.device='gpu7' is not a device name"),
        ("plugins.relinear=5", r"plugins.relinear=5 must be a mapping of the plugin's options \(or null: off\)"),
        ("plugins.kan_grids.refine_epochs=[1]", r"plugins.kan_grids.refine_epochs=\[1\] and "
                                                r"plugins.kan_grids.refine_sizes=\[\] must have the same length"),
        ("imports=[no_such_module]", r"imports: module 'no_such_module' could not be imported"),
        ("optim.lr=nan", r"optim.lr=nan must be a finite number >= 0"),
        ("optim.lr=-0.1", r"optim.lr=-0.1 must be a finite number >= 0"),
        ("optim.weight_decay=-1", r"optim.weight_decay=-1 must be a finite number >= 0"),
        ("seed=abc", r"seed='abc' must be an integer"),
        ("data.n_train=abc", r"data.n_train='abc' must be an integer \(kernelnn.data.make_darcy takes n_train\)"),
        ("model.hidden_channels=2.5", r"FNO: hidden_channels=2.5 must be a positive int"),
        ("trainer.grad_clip=nan", r"trainer.grad_clip=nan must be a positive number or null"),
        ("trainer.resume=/no/such/ckpt.pt", r"trainer.resume='/no/such/ckpt.pt': no checkpoint at"),
        ("data.test_resolutions=[16,24]", r"data.solve_resolution=24 .* \[16\] do not"),
        ("+patching.overlap=2", r"unknown patching key\(s\) \['overlap'\]; valid: \['levels', 'padding'\]"),
        ("patching.levels=3", r"the model cannot take the train data of darcy .*MGPatching: H and W \(16, 16\) must "
                              r"be divisible by 2\^\(2 levels\) = 64"),
    ],
)
def test_invalid_values_fail_before_training(tiny_darcy, tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        run(tiny_darcy(override), output_dir=tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_model_that_cannot_take_the_data(tmp_path):
    cfg = compose_config("model=mlp", "data=darcy", "data.n_train=4", "data.n_val=0", "data.n_test=2",
                         "data.resolution=16", "data.test_resolutions=[16]")
    with pytest.raises(ConfigError, match=r"the model cannot take the train data of darcy .*MLP: input must have"):
        run(cfg, output_dir=tmp_path)


def test_missing_data_path_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"config key data.path must be set"):
        run(compose_config("data=files"), output_dir=tmp_path)


def test_missing_data_file_is_named(tmp_path):
    missing = tmp_path / "absent.npz"
    with pytest.raises(ConfigError, match=rf"data: data file '{missing}' does not exist"):
        run(compose_config("data=files", f"data.path={missing}"), output_dir=tmp_path)


def test_corrupt_data_file_is_named_with_reason(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ConfigError, match=rf"data file '{bad}' could not be read as .h5: "):
        run(compose_config("data=files", f"data.path={bad}"), output_dir=tmp_path)


def test_data_file_with_wrong_channels(tmp_path):
    path = tmp_path / "two_channel.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=np.zeros((10, 2, 8, 8), np.float32), y=rng.standard_normal((10, 8, 8)).astype(np.float32))
    cfg = compose_config("data=files", f"data.path={path}", "model.in_channels=1", "model.n_modes=3")
    with pytest.raises(ConfigError, match="model.in_channels=1 does not match data files, which has 2"):
        run(cfg, output_dir=tmp_path)
