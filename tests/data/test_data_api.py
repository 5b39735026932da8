"""kernelnn.data's public names: every submodule stays a module, every dataset has a make_/load_ builder."""

import importlib
import pkgutil
import types

import pytest
import yaml

import kernelnn.data
from tests.conftest import CONFIG_DIR


def test_no_function_shadows_its_module():
    modules = [info.name for info in pkgutil.iter_modules(kernelnn.data.__path__)]
    assert "darcy" in modules
    for name in modules:
        importlib.import_module(f"kernelnn.data.{name}")
        assert isinstance(getattr(kernelnn.data, name), types.ModuleType), name
    import kernelnn.data.darcy as darcy

    assert callable(darcy.solve_darcy) and darcy.make_darcy is kernelnn.data.make_darcy


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("data/*.yaml")), ids=lambda p: p.stem)
def test_config_targets_are_builders_named_after_the_config(path):
    target = yaml.safe_load(path.read_text())["_target_"]
    module, _, name = target.rpartition(".")
    assert module == "kernelnn.data" and name in (f"make_{path.stem}", f"load_{path.stem}")
    assert callable(getattr(kernelnn.data, name)) and name in kernelnn.data.__all__
