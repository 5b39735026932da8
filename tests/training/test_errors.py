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


def test_model_that_cannot_take_the_data(tmp_path):
    cfg = compose_config("model=mlp", "data=darcy", "data.n_train=4", "data.n_val=0", "data.n_test=2",
                         "data.resolution=16", "data.test_resolutions=[16]")
    with pytest.raises(ConfigError, match=r"the model cannot take the train data of darcy .*MLP: input must have"):
        run(cfg, output_dir=tmp_path)


def test_missing_data_path_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"config key data.path must be set"):
        run(compose_config("data=files"), output_dir=tmp_path)


def test_data_file_with_wrong_channels(tmp_path):
    path = tmp_path / "two_channel.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=np.zeros((10, 2, 8, 8), np.float32), y=rng.standard_normal((10, 8, 8)).astype(np.float32))
    cfg = compose_config("data=files", f"data.path={path}", "model.in_channels=1", "model.n_modes=3")
    with pytest.raises(ConfigError, match="model.in_channels=1 does not match data files, which has 2"):
        run(cfg, output_dir=tmp_path)
