"""Training plugins: a user's own plugin switched on from the config, the hooks' order and state, the built-in
plugins' own switches and errors, and a loop that names no layer family."""

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from kernelnn.protocols import Regularized, layers_with
from kernelnn.training import ConfigError, TrainingPlugin, run
from kernelnn.training.checkpoint import load_checkpoint
from kernelnn.training.config import require
from tests.conftest import QUIET_TRAINER, ROOT, compose_config


@dataclass
class CountingConfig:
    weight: float = 0.0

    def __post_init__(self):
        require(self.weight >= 0, "weight", self.weight, "must be >= 0")


class CountingPlugin(TrainingPlugin):
    """A user's plugin: records the hooks it sees, adds ``weight * sum(p^2)`` to the loss, logs a metric and keeps
    a counter in the checkpoint."""

    Config = CountingConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.steps = 0
        self.events: list[str] = []

    def setup(self, trainer):
        self.events.append("setup")

    def on_fit_start(self, trainer):
        self.events.append("fit_start")

    def on_epoch_start(self, trainer, epoch):
        self.events.append(f"epoch_start {epoch}")

    def on_step_end(self, trainer):
        self.steps += 1

    def loss_terms(self, trainer):
        return {"l2_weights": self.config.weight * sum(p.square().sum() for p in trainer.model.parameters())}

    def epoch_metrics(self, trainer):
        return {"train/plugin_steps": float(self.steps)}

    def on_epoch_end(self, trainer, epoch, row):
        self.events.append(f"epoch_end {epoch}")

    def after_fit(self, trainer):
        self.events.append("after_fit")
        return {"steps": self.steps, "events": self.events}

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


TARGET = "+plugins.counting._target_=tests.training.test_plugins.CountingPlugin"


def spirals(*overrides):
    return compose_config("experiment=spirals_mlp", "data.n_train=64", "trainer.batch_size=32", "trainer.epochs=2",
                          *QUIET_TRAINER, *overrides)


def test_a_users_plugin_from_the_config_sees_every_hook_and_keeps_its_state(tmp_path):
    summary = run(spirals(TARGET, "+plugins.counting.weight=0.5"), output_dir=tmp_path / "a")
    assert summary["plugins"]["counting"]["events"] == ["setup", "fit_start", "epoch_start 0", "epoch_end 0",
                                                        "epoch_start 1", "epoch_end 1", "after_fit"]
    assert summary["plugins"]["counting"]["steps"] == 4  # 64 samples / 32 per step, 2 epochs
    ckpt = load_checkpoint(summary["last_checkpoint"])
    assert ckpt["plugins"]["counting"] == {"steps": 4}
    assert [row["train/plugin_steps"] for row in ckpt["history"]] == [2.0, 4.0]
    # Its loss term is in the objective: a large weight shrinks the weights compared with no term.
    plain = run(spirals(TARGET), output_dir=tmp_path / "b")
    norm = {name: sum(v.square().sum() for k, v in load_checkpoint(s["last_checkpoint"])["model"].items()
                      if k.endswith("weight")) for name, s in (("shrunk", summary), ("plain", plain))}
    assert norm["shrunk"] < norm["plain"]
    # Resuming restores its state: the counter goes on from 4.
    resumed = run(spirals(TARGET, "trainer.epochs=3", f"trainer.resume={tmp_path / 'b'}"), output_dir=tmp_path / "c")
    assert resumed["plugins"]["counting"]["steps"] == 6


@pytest.mark.parametrize(("overrides", "message"), [
    (("+plugins.nonsense.x=1",), r"plugins.nonsense is not a built-in training plugin .* "
                                 r"plugins.nonsense._target_=your_module.YourPlugin"),
    (("+plugins.mine._target_=torch.nn.Linear",), r"plugins.mine._target_='torch.nn.Linear' is not a kernelnn "
                                                  r"TrainingPlugin subclass"),
    (("+plugins.mine._target_=no.such.Module",), r"plugins.mine._target_='no.such.Module' could not be imported"),
    ((TARGET, "+plugins.counting.weight=-1"), r"plugins.counting.weight=-1(\.0)? must be >= 0"),
    ((TARGET, "+plugins.counting.wieght=1"), r"unknown plugins.counting key 'wieght'; valid: \['weight'\]"),
    (("plugins.kan_grids.update_every=often",), r"plugins.kan_grids.update_every='often': Value 'often' .* "
                                                r"could not be converted to Integer"),
    (("+plugins.data_init.sample=5",), r"unknown plugins.data_init key 'sample'; valid: \['enabled', 'samples'\]"),
])
def test_bad_plugin_configs_name_the_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run(spirals(*overrides), output_dir=tmp_path)


def test_spectral_refiner_fails_before_training_without_a_spectral_conv(tmp_path):
    with pytest.raises(ConfigError, match="plugins.spectral_refiner applies to operator learning only"):
        run(spirals("plugins.spectral_refiner.loss=sobolev", "plugins.spectral_refiner.epochs=1"), output_dir=tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_switching_off_data_init_keeps_the_constructors_centres(tmp_path):
    common = ("model.neuron=rbf", "model.hidden=[8]", "trainer.epochs=1", "optim.lr=0")
    placed = run(spirals(*common), output_dir=tmp_path / "on")
    kept = run(spirals(*common, "plugins.data_init.enabled=false"), output_dir=tmp_path / "off")
    centres = {name: next(v for k, v in load_checkpoint(s["last_checkpoint"])["model"].items()
                          if k.endswith("centers")) for name, s in (("on", placed), ("off", kept))}
    torch.manual_seed(0)  # run() seeds the model's construction with the run's seed
    from hydra.utils import instantiate

    fresh = instantiate(spirals(*common).model, in_features=2, out_features=3)
    start = next(v for k, v in fresh.state_dict().items() if k.endswith("centers"))
    assert torch.equal(centres["off"], start) and not torch.equal(centres["on"], start)


class Shrinking(nn.Linear):
    """A user's layer with its own penalty: found through the Regularized protocol, no registration."""

    def regularization(self):
        return 100.0 * self.weight.square().sum()


def test_protocols_find_a_users_layer():
    model = nn.Sequential(Shrinking(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert list(layers_with(model, Regularized)) == ["0"]


def test_regularization_plugin_adds_layer_penalties_and_can_be_switched_off(tmp_path):
    from kernelnn.training.plugins import Regularization

    class Owner:
        model = nn.Sequential(Shrinking(2, 3), nn.Linear(3, 1))

    plugin = Regularization()
    plugin.setup(Owner)
    torch.testing.assert_close(plugin.loss_terms(Owner)["regularization"], 100.0 * Owner.model[0].weight.square().sum())
    off = run(spirals("model.neuron=quadratic", "+model.neuron_options.shrinkage=[0,1e3]",
                      "plugins.regularization.enabled=false"), output_dir=tmp_path)
    assert off["epochs"] == 2


def test_the_loop_names_no_layer_family():
    """The acceptance check of the plugin design: trainer.py and run.py know no family by name."""
    family = re.compile(r"\b(kan|delta|quadratic|relinear|refine|grid)\b", re.IGNORECASE)
    for name in ("trainer.py", "run.py"):
        text = (ROOT / "kernelnn" / "training" / name).read_text()
        assert not family.findall(text), (name, sorted(set(family.findall(text))))
    assert Path(ROOT / "kernelnn" / "training" / "plugins").is_dir()
