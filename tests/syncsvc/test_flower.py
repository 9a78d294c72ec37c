"""Flower is never open: `make run` generates a login when FLOWER_BASIC_AUTH is unset, and a
real Flower process answers 401 without it and 200 with it."""
from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

import pytest
import requests

from syncsvc.processes import ProcessStack

DEVSTACK = Path(__file__).resolve().parents[2] / "scripts" / "devstack.py"


def _load_devstack():
    # scripts/ is not a package (the scripts run before the project is installed): load by path.
    spec = importlib.util.spec_from_file_location("syncsvc_scripts_devstack", DEVSTACK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


devstack = _load_devstack()


def test_make_run_generates_a_flower_login_once_and_keeps_it_private(tmp_path):
    # given: no FLOWER_BASIC_AUTH
    env: dict[str, str] = {}

    # when
    note = devstack.flower_login(env, tmp_path)
    again: dict[str, str] = {}
    devstack.flower_login(again, tmp_path)

    # then: admin:<random>, kept in var/ readable by its owner only, the same on the next run
    user, _, password = env["FLOWER_BASIC_AUTH"].partition(":")
    assert user == "admin" and len(password) >= 16
    path = tmp_path / devstack.FLOWER_AUTH_FILE
    assert path.read_text().strip() == env["FLOWER_BASIC_AUTH"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert again["FLOWER_BASIC_AUTH"] == env["FLOWER_BASIC_AUTH"]
    assert note == f"login: admin / {password}, from var/{devstack.FLOWER_AUTH_FILE}"


def test_make_run_uses_flower_basic_auth_from_the_environment_and_does_not_print_it(tmp_path):
    # given
    env = {"FLOWER_BASIC_AUTH": "ops:pw1,lead:pw2"}

    # when
    note = devstack.flower_login(env, tmp_path)

    # then
    assert env["FLOWER_BASIC_AUTH"] == "ops:pw1,lead:pw2"
    assert "pw1" not in note and not (tmp_path / devstack.FLOWER_AUTH_FILE).exists()


def test_var_is_git_ignored():
    assert "var/" in (DEVSTACK.parents[1] / ".gitignore").read_text().split()


@pytest.mark.stack
def test_flower_answers_401_without_its_login_and_200_with_it(tmp_path):
    # given: a real Flower process, as make run and docker start it
    processes = ProcessStack(env={**os.environ, "FLOWER_BASIC_AUTH": "ops:s3cret-pw,lead:other-pw"}, log_dir=tmp_path)
    try:
        url = processes.start_flower()
        session = requests.Session()
        session.trust_env = False

        # when / then
        assert session.get(url + "/", timeout=10).status_code == 401
        assert session.get(url + "/", auth=("ops", "wrong"), timeout=10).status_code == 401
        assert session.get(url + "/", auth=("ops", "s3cret-pw"), timeout=10).status_code == 200
        assert session.get(url + "/", auth=("lead", "other-pw"), timeout=10).status_code == 200
    finally:
        processes.stop()
