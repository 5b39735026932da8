"""Training plugins: each family's training behaviour, outside the loop (see :mod:`.base` for the hooks).

Built-in plugins are registered here under the name of their config section (``plugins.<name>``). A plugin of
your own is a :class:`TrainingPlugin` subclass in your module, switched on from the config with
``+plugins.<name>._target_=my_module.MyPlugin`` (its other keys are its ``Config`` fields), or passed to
:func:`kernelnn.training.run` as ``plugins=[...]``.
"""

from __future__ import annotations

from typing import Any

from kernelnn.registry import Registry
from kernelnn.training.config import typed
from kernelnn.training.errors import ConfigError
from kernelnn.training.plugins.base import NoOptions, TrainingPlugin
from kernelnn.training.plugins.data_init import DataInit
from kernelnn.training.plugins.decoder_lr import DecoderLR
from kernelnn.training.plugins.delta_sparsity import DeltaSparsity
from kernelnn.training.plugins.field_init import FieldInit
from kernelnn.training.plugins.field_report import FieldReport
from kernelnn.training.plugins.kan_grids import KANGrids
from kernelnn.training.plugins.pod_basis import PODBasis
from kernelnn.training.plugins.query_points import QueryPointsPlugin
from kernelnn.training.plugins.regularization import Regularization
from kernelnn.training.plugins.relinear import ReLinear
from kernelnn.training.plugins.spectral_refiner import SpectralRefiner

PLUGINS = Registry("training plugin")
for _plugin in (DataInit, PODBasis, Regularization, ReLinear, DeltaSparsity, KANGrids, SpectralRefiner,
                QueryPointsPlugin, FieldInit, FieldReport, DecoderLR):
    PLUGINS.register(_plugin.name)(_plugin)


def plugin_class(name: str, target: str | None) -> type[TrainingPlugin]:
    """The class for config section ``plugins.<name>``: a built-in by name, or the class ``target`` names."""
    if target is None:
        if name not in PLUGINS:
            raise ConfigError(f"plugins.{name} is not a built-in training plugin (valid: {', '.join(PLUGINS.names())});"
                              f" a plugin of your own needs plugins.{name}._target_=your_module.YourPlugin")
        return PLUGINS.get(name)
    from hydra.utils import get_class

    try:
        cls = get_class(target)
    except Exception as err:  # noqa: BLE001 - hydra raises several kinds
        raise ConfigError(f"plugins.{name}._target_={target!r} could not be imported: {err}") from None
    if not (isinstance(cls, type) and issubclass(cls, TrainingPlugin)):
        raise ConfigError(f"plugins.{name}._target_={target!r} is not a kernelnn TrainingPlugin subclass")
    return cls


def build_plugins(sections: dict[str, Any] | None) -> list[TrainingPlugin]:
    """The enabled plugins of a ``plugins`` config node (``{name: section}``), in config order."""
    if sections is None:
        return []
    if not isinstance(sections, dict):
        raise ConfigError(f"plugins={sections!r} must be a mapping of sections (plugins.<name>.<key>=...)")
    plugins = []
    for name, section in sections.items():
        if section is None:  # plugins.<name>=null switches the plugin off
            continue
        if not isinstance(section, dict):
            raise ConfigError(f"plugins.{name}={section!r} must be a mapping of the plugin's options (or null: off)")
        section = dict(section)
        cls = plugin_class(name, section.pop("_target_", None))
        plugin = cls(typed(section, cls.Config, f"plugins.{name}"))
        plugin.name = name  # summary key and messages use the section's name
        if plugin.enabled:
            plugins.append(plugin)
    return plugins


__all__ = ["PLUGINS", "DataInit", "DeltaSparsity", "FieldInit", "FieldReport", "KANGrids", "NoOptions", "ReLinear",
           "Regularization", "SpectralRefiner", "TrainingPlugin", "build_plugins", "plugin_class"]
