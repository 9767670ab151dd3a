"""``workbench settings``: changes are validated, stored in workbench.toml and audited."""

from __future__ import annotations

import json

from workbench import audit
from workbench.cli import main
from workbench.config import Settings
from workbench.db import connect


def test_set_show_and_audit(workspace, capsys):
    assert main(["--home", str(workspace), "--user", "tech", "settings", "set", "threshold", "0.42", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"setting": "threshold", "old": None, "new": 0.42}
    assert Settings.load(workspace).threshold == 0.42
    assert main(["--home", str(workspace), "settings", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["threshold"] == 0.42
    (entry,) = [e for e in audit.entries(connect(workspace / "workbench.db")) if e.action == "settings.change"]
    assert entry.user == "tech" and entry.action == "settings.change" and entry.details["new"] == 0.42


def test_bad_values_change_nothing(workspace, capsys):
    for args in (["min_face_px", "3"], ["min_face_px", "big"], ["colour", "red"], ["user", "x"]):
        assert main(["--home", str(workspace), "settings", "set", *args]) == 1
    assert "at least 8" in capsys.readouterr().err
    assert not (workspace / "workbench.toml").exists()
    assert [e for e in audit.entries(connect(workspace / "workbench.db")) if e.action == "settings.change"] == []
