"""The layers of setup.cfg's import-linter contracts hold: no arrow runs up, no import loops.

cli → modes (batch, live, train, compare, importer, bench) → file → pipeline → engine
    → models, io → core (the ground floor)
"""

from __future__ import annotations

import pytest
from conftest import REPO
from importlinter.cli import lint_imports


def test_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert lint_imports(config_filename=str(REPO / "setup.cfg"), no_cache=True) == 0
