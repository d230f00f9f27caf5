"""The demo behind ``python -m fastnn demo`` runs and prints the regime and optimizer tables."""

from fastnn import _demo


def _tables(out):
    """The Markdown tables of ``out``: a list of (header, rows), each row a list of cells."""
    tables, current = [], None
    for line in out.splitlines():
        if not line.startswith("| "):
            current = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if current is None:
            current = (cells, [])
            tables.append(current)
        elif not cells[0].startswith("---"):
            current[1].append(cells)
    return tables


def test_demo_quick_prints_tables_matching_sklearn(capsys, tmp_path):
    assert _demo.main(["--quick", "--backend", "numpy", "--lessons", "single_neuron",
                       "--figures", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    (regime_header, regimes), (optimizer_header, optimizers) = _tables(out)
    assert regime_header[:2] == ["regime", "fastnn accuracy"]
    assert [r[0] for r in regimes] == [name for name, _ in _demo.REGIMES]
    assert [r[0] for r in optimizers] == [name for name, _ in _demo.OPTIMIZERS]
    assert optimizer_header[0].startswith("optimizer")
    for name, params in _demo.REGIMES + _demo.OPTIMIZERS:
        row = next(r for r in regimes + optimizers if r[0] == name
                   and (r in regimes) == ((name, params) in _demo.REGIMES))
        assert float(row[2]) > 0
        if params["solver"] in _demo.SKLEARN_SOLVERS:
            # same init, same shuffles, same steps: the same test accuracy as scikit-learn
            assert abs(float(row[1]) - float(row[3])) <= 0.01
            assert float(row[4]) > 0
        else:
            assert row[3] == row[4] == "-"
    assert "Lesson 1." in out
    assert (tmp_path / "single_neuron.png").stat().st_size > 0
