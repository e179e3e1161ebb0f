"""Fixtures for the tests that run a real Kamailio.

Every test here is marked ``kamailio``. Where Kamailio cannot run (not root, packages or
modules missing, no Python 3.11 pycurl for the embedded interpreter) the tests are skipped
with the reason, which ``pytest -ra`` prints. Under CI (``CI`` set) they fail instead: CI
installs the packages, so a skip there would hide a broken install step.
"""
from __future__ import annotations

import os
import pathlib
from typing import Callable, Iterator, Mapping

import pytest

from .kamharness import KAMAILIO_CFG_DIR, SCRIPTS, Kamailio, unavailable_reason

StartKamailio = Callable[..., Kamailio]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.kamailio)


def require_kamailio(*modules: str) -> None:
    """Skip (or, under CI, fail) unless Kamailio with ``modules`` can run here."""
    reason = unavailable_reason(*modules)
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} -- CI installs Debian's kamailio packages, so this must run",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def start_kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartKamailio]:
    """Start Kamailio instances for a test module; every one is stopped at its end, by PID.

    ``start_kamailio(cfg=..., script=..., env=..., defines=..., modules=(...), ready=...,
    working_dir=...)`` runs ``cfg`` (default kamailio-cfg/kamailio.cfg) with ``script`` as
    KEMI_SCRIPT (``None``: the cfg's own default).
    """
    started: list[Kamailio] = []

    def start(*, cfg: pathlib.Path = KAMAILIO_CFG_DIR / "kamailio.cfg",
              script: str | pathlib.Path | None = "probe.py",
              env: Mapping[str, str] | None = None,
              defines: Mapping[str, str | int] | None = None,
              modules: tuple[str, ...] = (), ready: str = "options",
              working_dir: pathlib.Path | None = None) -> Kamailio:
        require_kamailio(*modules)
        workdir = tmp_path_factory.mktemp("kamailio")
        all_defines = dict(defines or {})
        if script is not None:  # a name in tests/kamailio/scripts, or an absolute path
            all_defines["KEMI_SCRIPT"] = str(SCRIPTS / script)
        instance = Kamailio(cfg, workdir, defines=all_defines, env=env, ready=ready,
                            working_dir=working_dir)
        started.append(instance)
        return instance.start()

    yield start
    for instance in reversed(started):
        instance.stop()
