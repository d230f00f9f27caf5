"""The demo behind ``python -m fastnn demo`` runs and prints the regime table."""

from fastnn import _demo


def test_demo_quick_prints_table_matching_sklearn(capsys):
    assert _demo.main(["--quick", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| regime | fastnn accuracy")
    assert [r.split("|")[1].strip() for r in rows[1:]] == [name for name, _ in _demo.REGIMES]
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        # same init, same shuffles, same steps: the same test accuracy as scikit-learn
        assert abs(float(cells[1]) - float(cells[3])) <= 0.01
        assert float(cells[2]) > 0 and float(cells[4]) > 0
