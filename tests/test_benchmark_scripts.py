"""Every benchmark script explains every option: ``--help`` runs, and the shared ``describe`` refuses a parser with
an option that has no help text (so a new script or option without one fails here)."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from common import describe  # noqa: E402


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("bench_*.py")))
def test_help_explains_every_option(script):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--device" in result.stdout or "--out" in result.stdout or "--data" in result.stdout


def test_describe_fills_shared_help_and_refuses_options_without_any():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    describe(parser)
    assert "median" in parser.format_help() and "default: 5" in parser.format_help()
    parser.add_argument("--mystery", type=int)
    with pytest.raises(RuntimeError, match="--mystery"):
        describe(parser)
