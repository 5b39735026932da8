"""The one training loop behind ``train.py``."""

from kernelnn.training.errors import ConfigError, NonFiniteLossError
from kernelnn.training.run import load_model, run
from kernelnn.training.tasks import ClassificationTask, EnergyForcesTask, OperatorTask, RegressionTask
from kernelnn.training.trainer import Trainer, TrainerOptions

__all__ = ["ClassificationTask", "ConfigError", "EnergyForcesTask", "NonFiniteLossError", "OperatorTask",
           "RegressionTask", "Trainer", "TrainerOptions", "load_model", "run"]
