"""The lesson scripts in examples/ and the lessons demo run in their quick mode."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = {
    "single_neuron.py": ["single_neuron.png"],
    "cost_at_scale.py": ["cost_at_scale.png"],
    "gd_regimes.py": ["gd_regimes.png"],
    "optimizers.py": ["optimizers.png"],
    "check_and_tune.py": ["lr_find.png", "training_curves.png", "decision_boundary.png"],
}


def _run(args, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


def _check_pngs(directory, names):
    for name in names:
        data = (directory / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, name


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/ is not next to tests/")
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_example_quick(script, tmp_path):
    out = tmp_path / "figures"
    proc = _run([str(EXAMPLES / script), "--quick", "--out", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_pngs(out, SCRIPTS[script])
    assert "wrote" in proc.stdout


def test_single_neuron_numbers():
    from fastnn import _lessons

    r = _lessons.single_neuron_lesson(lr=0.15, epochs=300)
    quad, ce = r[(2.0, 2.0)]["quadratic"], r[(2.0, 2.0)]["cross_entropy"]
    # saturated start: the quadratic cost's first step is ~57x smaller than cross-entropy's
    assert quad["dz"][0] == pytest.approx(0.98201379 * 0.98201379 * (1 - 0.98201379), rel=1e-6)
    assert ce["dz"][0] == pytest.approx(0.98201379, rel=1e-6)
    assert quad["output"][100] > 0.9       # still on the plateau after 100 epochs
    assert ce["output"][30] < 0.25         # cross-entropy is already down
    assert _lessons.epochs_below(quad["output"]) is None
    assert _lessons.epochs_below(ce["output"]) <= 35


def test_lessons_demo_quick(tmp_path):
    # the lessons themselves are the examples' functions (run above); this checks the wiring
    out = tmp_path / "figs"
    proc = _run(["-m", "fastnn._lessons", "--quick", "--figures", str(out), "--lessons",
                 "single_neuron", "lr_find", "training"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for n in (1, 5, 6):
        assert f"Lesson {n}." in proc.stdout
    _check_pngs(out, SCRIPTS["single_neuron.py"] + SCRIPTS["check_and_tune.py"])


def test_lessons_demo_no_figures(tmp_path):
    proc = _run(["-m", "fastnn._lessons", "--quick", "--no-figures", "--lessons",
                 "single_neuron"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lesson 1." in proc.stdout and "\n  -> " not in proc.stdout
    assert not any(tmp_path.iterdir())
