"""Roles in the library: every operation against every role, through the Workspace and the CLI.

A workspace's first user owns it with every role; until an administrator sets a user, everyone
holds every role (team mode); then roles apply as assigned, refusals name the user, the action
and the role needed, and are written to the audit log.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from workbench import Workspace, audit
from workbench.access import ACTIONS
from workbench.config import Settings
from workbench.demo import DEMO_CASE, build_demo_workspace
from workbench.errors import AccessError, WorkbenchError
from workbench.types import Role

#: user -> roles set by the administrator ("nobody" is never set).
PEOPLE = {"ana": ["analyst"], "rev": ["reviewer"], "tech": ["technical"], "adm": ["administrator"], "aud": ["auditor"]}


@pytest.fixture(scope="module")
def assigned_home(tmp_path_factory, session_home, engine):
    """The demo workspace with one recorded search and first verdict, roles assigned."""
    home = tmp_path_factory.mktemp("access")
    (home / "models").symlink_to(session_home / "models", target_is_directory=True)
    with Workspace(Settings(home=home, user="owner"), engine=engine) as ws:
        built = build_demo_workspace(ws)
        run = ws.search_files(DEMO_CASE, [built["probe"]], top=3)
        ws.first_verdict(run.search_id, built["expected"], "possible match", "same face")
        assert not ws.access.roles_assigned  # team mode until the first user is set
        for name, roles in PEOPLE.items():
            ws.set_user(name, roles)
        assert ws.access.roles_assigned
    return home, built, run.search_id


@pytest.fixture
def home(assigned_home, tmp_path):
    src, built, search_id = assigned_home
    copy = tmp_path / "ws"
    shutil.copytree(src, copy, symlinks=True)
    return copy, {k: str(v).replace(str(src), str(copy)) for k, v in built.items() if isinstance(v, str)}, search_id


#: operation -> (action checked, call on a Workspace). Calls may fail for other reasons once allowed.
OPERATIONS = {
    "list cases": ("case.read", lambda ws, b, s, tmp: ws.list_cases()),
    "open a case": ("case.new", lambda ws, b, s, tmp: ws.new_case(f"OP-{ws.user}", offence="o", purpose="p")),
    "close a case": ("case.status", lambda ws, b, s, tmp: ws.set_case_status(DEMO_CASE, "closed", reason="r")),
    "archive a case": ("case.archive", lambda ws, b, s, tmp: ws.set_case_status(DEMO_CASE, "archived")),
    "upload": ("upload", lambda ws, b, s, tmp: ws.save_upload("still.jpg", open(b["probe"], "rb").read())),
    "extract footage": ("footage.extract", lambda ws, b, s, tmp: ws.extract(b["probe"])),
    "search": ("search.run", lambda ws, b, s, tmp: ws.search_files(DEMO_CASE, [b["probe"]], top=2)),
    "replay": ("search.replay", lambda ws, b, s, tmp: ws.replay(s)),
    "first verdict": ("review.first", lambda ws, b, s, tmp: ws.first_verdict(s, b["expected"], "no match", "different ears")),
    "second verdict": ("review.second", lambda ws, b, s, tmp: ws.second_verdict(s, b["expected"], "confirm", "agree")),
    "export report": ("report.export", lambda ws, b, s, tmp: ws.export_report(DEMO_CASE, tmp / "r.html")),
    "gallery stats": ("gallery.read", lambda ws, b, s, tmp: ws.gallery_stats()),
    "enrol": ("gallery.enrol", lambda ws, b, s, tmp: ws.enrol(b["custody"])),
    "rebuild index": ("gallery.rebuild", lambda ws, b, s, tmp: ws.rebuild_index()),
    "remove subject": ("gallery.remove", lambda ws, b, s, tmp: ws.remove_subject("DEMO-HANKS")),
    "verify audit": ("audit.read", lambda ws, b, s, tmp: ws.verify_audit()),
    "manage users": ("users.manage", lambda ws, b, s, tmp: ws.users()),
    "apply retention": ("retention", lambda ws, b, s, tmp: ws.apply_retention()),
}


def allowed(user: str, action: str) -> bool:
    return bool({Role(r) for r in PEOPLE.get(user, [])} & ACTIONS[action][1])


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_against_every_role(home, engine, tmp_path, operation):
    home, built, search_id = home
    action, call = OPERATIONS[operation]
    outcomes = {}
    for user in [*PEOPLE, "nobody"]:
        with Workspace(Settings(home=home, user=user), engine=engine) as ws:
            try:
                call(ws, built, search_id, tmp_path)
                outcomes[user] = "done"
            except AccessError as exc:
                message = str(exc)
                assert user in message and action in message and "role" in message, message
                outcomes[user] = "refused"
            except WorkbenchError:
                outcomes[user] = "done"  # allowed, then refused for another reason (e.g. two-person rule)
    expected = {user: "done" if allowed(user, action) else "refused" for user in outcomes}
    assert outcomes == expected
    with Workspace(Settings(home=home, user="aud"), engine=engine) as ws:
        refused = [e for e in audit.entries(ws.cases.conn) if e.action == "access.refused" and e.details["action"] == action]
    assert sorted(e.user for e in refused) == sorted(u for u, o in outcomes.items() if o == "refused")


def cli(home, *args, user=None, env=None):
    argv = [sys.executable, "-m", "workbench", "--home", str(home), *([] if user is None else ["--user", user]), *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize(
    "argv, action",
    [
        (["case", "list", "--json"], "case.read"),
        (["gallery", "rebuild", "--json"], "gallery.rebuild"),
        (["audit", "verify", "--json"], "audit.read"),
        (["users", "list", "--json"], "users.manage"),
        (["settings", "set", "top", "10", "--json"], "settings.change"),
    ],
)
def test_the_cli_applies_the_same_roles(home, argv, action):
    home, built, search_id = home
    for user in ("ana", "tech", "adm", "aud"):
        proc = cli(home, *argv, user=user)
        if allowed(user, action):
            assert "may not" not in proc.stderr, (user, proc.stderr)
        else:
            assert proc.returncode == 1 and f"{user} may not" in proc.stderr and "Traceback" not in proc.stderr
            assert json.loads(proc.stdout)["type"] == "AccessError"


def test_a_declared_user_is_honoured_only_where_allowed(workspace):
    import os

    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_DECLARED_USERS"}
    first = cli(workspace, "case", "list", env=env)  # the login user opens (and owns) the workspace
    assert first.returncode == 0, first.stderr
    refused = cli(workspace, "case", "list", user="mallory", env=env)
    assert refused.returncode == 1 and "acting as 'mallory' is not allowed" in refused.stderr
    assert cli(workspace, "users", "allow-declared", "on", env=env).returncode == 0
    honoured = cli(workspace, "case", "list", user="mallory", env=env)
    assert honoured.returncode == 0, honoured.stderr
    with Workspace(Settings(home=workspace, user="x")) as ws:
        sessions = [e.details for e in audit.entries(ws.cases.conn) if e.action == "session.declared_user"]
    assert sessions and sessions[-1]["declared"] == "mallory" and sessions[-1]["authenticated"]


def test_team_mode_until_an_administrator_sets_a_user(workspace):
    with Workspace(Settings(home=workspace, user="first")) as ws:
        assert ws.access.owner == "first" and set(ws.access.roles_of("anyone")) == set(Role)
        ws.set_user("second", ["reviewer"])
        assert ws.access.roles_of("anyone") == frozenset() and ws.access.roles_of("first") == frozenset(Role)
        with pytest.raises(AccessError, match="cannot deactivate themselves"):
            ws.deactivate_user("first")
    with Workspace(Settings(home=workspace, user="second")) as ws:
        with pytest.raises(AccessError, match="second may not open a case"):
            ws.new_case("OP-1", offence="o", purpose="p")
