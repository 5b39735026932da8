"""The README's "Extending kernelnn" section works as written: its files are written out, its commands run."""

import os
import re
import subprocess
import sys

from kernelnn.training.checkpoint import load_checkpoint
from tests.conftest import ROOT

QUIET = ["trainer.progress_bar=false", "trainer.tensorboard=false", "trainer.plots=false"]


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Extending kernelnn")
    return text[start: text.index("\n## ", start + 1)]


def blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w+)\n(.*?)```", text, flags=re.DOTALL)


def test_readme_extending_examples_run_as_written(tmp_path):
    files, commands = 0, []
    for language, code in blocks(section()):
        first = code.splitlines()[0]
        if language in ("python", "yaml"):  # each starts with "# <path>": the file it is
            path = tmp_path / first.removeprefix("# ").strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
            files += 1
        elif language == "bash":
            commands += [line for line in code.splitlines() if line.strip()]
    assert files == 4 and len(commands) == 2
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    checks = subprocess.run([sys.executable, "check_my_layer.py"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert checks.returncode == 0, checks.stderr[-3000:]
    for i, command in enumerate(commands):
        prefix, args = command.split(" python train.py ")
        assert prefix == "PYTHONPATH=."
        proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *args.split(), *QUIET,
                               f"hydra.run.dir={tmp_path / f'run{i}'}"], cwd=tmp_path,
                              env={**env, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "run0" / "checkpoints" / "last.pt")
    assert ckpt["model_config"]["_target_"] == "my_project.RingNet"
    assert ckpt["history"][-1]["test/accuracy"] > 0.8 and "train/weight_norm" in ckpt["history"][-1]
    assert load_checkpoint(tmp_path / "run1" / "checkpoints" / "last.pt")["model_config"]["conv"] == "cosine"
    # The trained models come back from their checkpoints once my_project is imported (a registered model).
    check = ("import my_project, torch; from kernelnn.training import load_model; "
             f"m = load_model({str(tmp_path / 'run0/checkpoints/best.pt')!r}); print(m(torch.zeros(3, 2)).shape); "
             f"cnn = load_model({str(tmp_path / 'run1/checkpoints/best.pt')!r}); "
             "print(sum(type(l).__name__ == 'CosineConv2d' for l in cnn.modules()), 'cosine layers')")
    proc = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env={**env, "PYTHONPATH": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "torch.Size([3, 3])" in proc.stdout and "2 cosine layers" in proc.stdout, proc.stdout
