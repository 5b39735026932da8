"""The interatomic potential in the training loop: systems of several sizes batched without padding (the
task's packed form equals its stacked form system by system), training from an extended-XYZ file of mixed
sizes, and the periodic Lennard-Jones recipe with its larger test set."""

import math

import pytest
import torch
from hydra.utils import instantiate

from kernelnn.data.atomic_systems import AtomicSystems
from kernelnn.training import load_model, run
from kernelnn.training.checkpoint import load_checkpoint
from kernelnn.training.tasks import EnergyForcesTask
from tests.conftest import QUIET_TRAINER, TINY_DATA, compose_config
from tests.test_configs import extxyz_overrides


def test_packed_batches_give_each_system_its_stacked_loss_and_metrics():
    """Systems of 3, 5 and 2 atoms in one padding-free batch: every per-system metric equals the stacked form's
    for that system alone, and the loss is their mean."""
    task = EnergyForcesTask(energy_weight=2.0, force_weight=0.5)
    g = torch.Generator().manual_seed(0)
    sizes = [3, 5, 2]
    target = {"energy": torch.randn(3, generator=g), "forces": torch.randn(10, 3, generator=g),
              "atoms": torch.tensor(sizes)}
    pred = {"energy": torch.randn(3, generator=g), "forces": torch.randn(10, 3, generator=g)}
    packed = task.metrics(pred, target)
    start = 0
    for k, n in enumerate(sizes):
        rows = slice(start, start + n)
        one = [torch.cat([p["energy"][k:k + 1], p["forces"][rows].flatten()])[None] for p in (pred, target)]
        for name, value in task.metrics(*one).items():
            torch.testing.assert_close(packed[name][k:k + 1], value)
        start += n
    torch.testing.assert_close(task.loss(pred, target), packed["loss"].mean())


def test_collate_joins_systems_without_padding():
    systems = AtomicSystems.from_frames([torch.randn(n, 3) for n in (2, 4, 3)],
                                        [torch.zeros(n, dtype=torch.long) for n in (2, 4, 3)],
                                        torch.tensor([1.0, 2.0, 3.0]), [torch.randn(n, 3) for n in (2, 4, 3)])
    (positions, species, batch), y = AtomicSystems.collate([systems[2], systems[0]])
    assert positions.shape == (5, 3) and batch.tolist() == [0, 0, 0, 1, 1] and y["atoms"].tolist() == [3, 2]
    torch.testing.assert_close(positions[3:], systems.positions[:2])
    torch.testing.assert_close(y["energy"], torch.tensor([3.0, 1.0]))


def test_bad_systems_are_refused_naming_the_system():
    forces = [torch.randn(2, 3), torch.full((3, 3), float("nan"))]
    with pytest.raises(ValueError, match="forces of 1 system.* the first is system 1"):
        AtomicSystems.from_frames([torch.randn(2, 3), torch.randn(3, 3)], [torch.zeros(n, dtype=torch.long)
                                                                            for n in (2, 3)], [1.0, 2.0], forces)
    with pytest.raises(ValueError, match=r"need positions of shape \(5, 3\)"):
        AtomicSystems(torch.randn(4, 3), torch.zeros(5, dtype=torch.long), torch.tensor([2, 3]), torch.zeros(2),
                      torch.zeros(5, 3))
    with pytest.raises(ValueError, match="system 0 has 2 positions but 3 species"):  # same totals, misaligned
        AtomicSystems.from_frames([torch.randn(2, 3), torch.randn(2, 3)],
                                  [torch.zeros(3, dtype=torch.long), torch.zeros(1, dtype=torch.long)], [1.0, 2.0],
                                  [torch.randn(3, 3), torch.randn(1, 3)])
    for atoms in (torch.tensor(3), torch.tensor([1.5, 1.5])):
        with pytest.raises(ValueError, match="atoms must be a 1-D integer tensor"):
            AtomicSystems(torch.randn(3, 3), torch.zeros(3, dtype=torch.long), atoms, torch.zeros(2),
                          torch.zeros(3, 3))


def test_empty_periodic_split_and_integer_energies():
    empty = AtomicSystems.from_frames(torch.zeros(0, 4, 3), torch.zeros(0, 4, dtype=torch.long), torch.zeros(0),
                                      torch.zeros(0, 4, 3), torch.zeros(0, 3, 3))
    assert len(empty) == 0 and empty.cells.shape == (0, 3, 3)
    systems = AtomicSystems.from_frames([torch.randn(2, 3)], [torch.zeros(2, dtype=torch.long)], [3],
                                        [torch.randn(2, 3)])
    assert systems.energy.is_floating_point()


def test_packed_targets_that_do_not_add_up_are_named():
    task = EnergyForcesTask()
    pred = {"energy": torch.zeros(2), "forces": torch.zeros(5, 3)}
    with pytest.raises(ValueError, match="summing to the forces' 5 rows"):
        task.loss(pred, {"energy": torch.zeros(2), "forces": torch.zeros(5, 3), "atoms": torch.tensor([2, 2])})
    with pytest.raises(ValueError, match="need 'energy', 'forces' and 'atoms'"):
        task.loss(pred, {"energy": torch.zeros(2), "forces": torch.zeros(5, 3)})
    mixed = task.loss(pred, {"energy": torch.ones(2, dtype=torch.float64), "forces": torch.ones(5, 3,
                             dtype=torch.float64), "atoms": torch.tensor([2, 3])})  # float32 vs float64: promoted
    assert mixed.dtype == torch.float64


def test_mixed_size_extxyz_trains_and_the_checkpoint_predicts(tmp_path):
    """`python train.py model=interatomic data=extxyz data.path=...` on clusters of 5 and 6 atoms."""
    cfg = compose_config("model=interatomic", "data=extxyz", *extxyz_overrides(tmp_path), "data.cutoff=3.0",
                         "model.L=1", "model.channels=4", "model.layers=1", "trainer.epochs=4",
                         "trainer.batch_size=4", "optim.lr=0.01", *QUIET_TRAINER)
    summary = run(cfg, output_dir=tmp_path / "run")
    assert all(math.isfinite(v) for v in summary["test"].values())
    history = [row["train/loss"] for row in load_checkpoint(summary["last_checkpoint"])["history"]]
    assert history[-1] < history[0]
    model = load_model(summary["best_checkpoint"])
    out = model(torch.randn(7, 3), torch.zeros(7, dtype=torch.long))  # a size it never saw
    assert out["energy"].shape == (1,) and out["forces"].shape == (7, 3)


def test_periodic_recipe_reports_the_larger_test_set(tmp_path):
    """Trained on 27-atom boxes; the reported metrics of the 64-atom test set are those of the best checkpoint,
    recomputed here on the whole set in one batch."""
    cfg = compose_config("experiment=periodic_lj_interatomic", *TINY_DATA["periodic_atoms"], "model.L=1",
                         "model.channels=4", "trainer.epochs=2", "trainer.test_every=1", *QUIET_TRAINER)
    summary = run(cfg, output_dir=tmp_path)
    model = load_model(summary["best_checkpoint"])
    x, y = instantiate(cfg.data).tests["test_64"].inputs_and_targets()
    with torch.no_grad():  # forces are still derivatives inside the model, returned detached
        metrics = EnergyForcesTask().metrics(model(*x), y)
    for name in ("force_mse", "energy_mae_per_atom"):
        assert summary["test"][f"test_64/{name}"] == pytest.approx(float(metrics[name].mean()), rel=1e-4)
    assert summary["test"]["test_64/force_rmse"] == pytest.approx(math.sqrt(summary["test"]["test_64/force_mse"]))
