"""The one training loop behind ``train.py``, and the plugins through which layer families join it."""

from kernelnn.training.checkpoint import load_model
from kernelnn.training.config import TrainerConfig
from kernelnn.training.errors import ConfigError, NonFiniteLossError
from kernelnn.training.plugins import PLUGINS, TrainingPlugin
from kernelnn.training.run import run
from kernelnn.training.tasks import ClassificationTask, EnergyForcesTask, OperatorTask, RegressionTask
from kernelnn.training.trainer import Trainer

__all__ = ["PLUGINS", "ClassificationTask", "ConfigError", "EnergyForcesTask", "NonFiniteLossError", "OperatorTask",
           "RegressionTask", "Trainer", "TrainerConfig", "TrainingPlugin", "load_model", "run"]
