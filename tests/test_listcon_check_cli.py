"""listcon (spec 7.1) as valid JSON, and `python -m kamhttp check|listcon FILE`."""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from kamhttp import cli, config
from kamhttp.ops.listcon import listcon, listcon_json

ROOT = pathlib.Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("fresh_config")


def run(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kamhttp", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd or ROOT)


@pytest.fixture
def kamailio_cfg(tmp_path):
    (tmp_path / "conns.cfg").write_text(
        "[file_a]\nurl = http://fu:fsecret@127.0.0.1:8081/a\ntimeout = 7\n"
        "[file_b]\nurl = https://10.0.0.2/b\nfailover = file_a\n")
    path = tmp_path / "kamailio.cfg"
    path.write_text(
        'modparam("http_client", "httpcon", "first=>http://user:pw@127.0.0.1/x;timeout=2")\n'
        'modparam("http_client", "config_file", "conns.cfg")\n'
        'modparam("http_client", "httpcon", "second=>http://only_user@127.0.0.1/y;'
        'failover=first;nosuch=1")\n'
        'modparam("http_client", "connection_timeout", 3)\n')
    return path


def test_fields_order_and_values(kamailio_cfg):
    """7.1: NAME, SCHEMA, URI, USERNAME, PASSWORD, FAILOVER, TIMEOUT; config-file connections
    first in file order, then httpcon in reverse definition order [verified 5.6.3]. C's
    USERNAME/PASSWORD are garbage or a crash (B8): kamhttp gives the user and masks the
    password (null when none). TIMEOUT is the effective value (master fix-up)."""
    rows = listcon(config.read(kamailio_cfg))
    assert [list(row) for row in rows] == [
        ["NAME", "SCHEMA", "URI", "USERNAME", "PASSWORD", "FAILOVER", "TIMEOUT"]] * 4
    assert rows == [
        {"NAME": "file_a", "SCHEMA": "http", "URI": "127.0.0.1:8081/a", "USERNAME": "fu",
         "PASSWORD": "********", "FAILOVER": None, "TIMEOUT": 7},
        {"NAME": "file_b", "SCHEMA": "https", "URI": "10.0.0.2/b", "USERNAME": None,
         "PASSWORD": None, "FAILOVER": "file_a", "TIMEOUT": 3},
        {"NAME": "second", "SCHEMA": "http", "URI": "127.0.0.1/y", "USERNAME": "only_user",
         "PASSWORD": None, "FAILOVER": "first", "TIMEOUT": 3},
        {"NAME": "first", "SCHEMA": "http", "URI": "127.0.0.1/x", "USERNAME": "user",
         "PASSWORD": "********", "FAILOVER": None, "TIMEOUT": 2},
    ]


def test_json_is_valid_and_never_shows_a_password(kamailio_cfg):
    text = listcon_json(config.read(kamailio_cfg))
    assert [c["NAME"] for c in json.loads(text)["CONNECTION"]] == ["file_a", "file_b",
                                                                   "second", "first"]
    assert "fsecret" not in text and '"pw"' not in text


def test_no_connections_is_cs_fault():
    """[verified 5.6.3] fault 500 "No Connection Definitions"."""
    assert json.loads(listcon_json(config.current())) == {
        "code": 500, "message": "No Connection Definitions"}


def test_cli_listcon(kamailio_cfg):
    result = run("listcon", str(kamailio_cfg))
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["CONNECTION"]) == 4
    assert "fsecret" not in result.stdout


def test_cli_listcon_without_connections_exits_1(tmp_path):
    path = tmp_path / "k.cfg"
    path.write_text('modparam("http_client", "maxdatasize", 1)\n')
    result = run("listcon", str(path))
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"code": 500, "message": "No Connection Definitions"}


def test_cli_check_prints_effective_settings_masked(kamailio_cfg):
    result = run("check", str(kamailio_cfg))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "OK, 4 connections" in out and "connection_timeout = 3" in out
    assert f"connection 'file_a' ({kamailio_cfg.parent / 'conns.cfg'}:1)" in out
    assert "password: '********'" in out and "fsecret" not in out and "'pw'" not in out
    assert "timeout: 3 s" in out and "timeout: 7 s" in out
    assert "warning:" in out and "'nosuch'" in out


@pytest.mark.parametrize("name, text, kind", [
    ("conns.yaml", "connections:\n  y: {url: 'http://h'}\n", "yaml"),
    ("http.cfg", "[c]\nurl = http://h\n", "config_file"),
    ("kamailio.cfg", '#!KAMAILIO\nmodparam("http_client", "httpcon", "k=>http://h")\n',
     "kamailio_cfg"),
    ("noext", "modparams:\n  - httpcon: 'n=>http://h'\n", "yaml"),
])
def test_cli_check_detects_the_kind(tmp_path, name, text, kind):
    path = tmp_path / name
    path.write_text(text)
    assert config.detect_kind(path, text) == kind
    result = run("check", str(path))
    assert result.returncode == 0, result.stderr
    assert "OK, 1 connection" in result.stdout


def test_cli_check_lists_every_error_and_exits_1(tmp_path):
    path = tmp_path / "bad.cfg"
    path.write_text("[a]\nurl = http://h/~x\n[b]\ntimeout = z\n[c-1]\n[d]\n")
    result = run("check", str(path))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines()[0] == f"{path}: 4 errors"
    assert [line.split(": ", 1)[0].strip() for line in result.stderr.splitlines()[1:]] == [
        f"{path}:{n}" for n in (2, 4, 5, 6)]


def test_cli_check_unreadable_file(tmp_path):
    result = run("check", str(tmp_path / "missing.yaml"))
    assert result.returncode == 1 and "cannot read" in result.stderr


def test_cli_defines_for_kamailio_cfg(tmp_path):
    path = tmp_path / "kamailio.cfg"
    path.write_text('#!ifdef WITH_API\nmodparam("http_client", "httpcon", "api=>http://h")\n'
                    '#!endif\n')
    assert run("listcon", str(path)).returncode == 1
    result = run("listcon", "-A", "WITH_API", str(path))
    assert result.returncode == 0 and '"api"' in result.stdout


def test_commands_come_from_one_table():
    """Others add subcommands with one table entry; the target is imported when it runs."""
    assert [c.name for c in cli.COMMANDS][:2] == ["check", "listcon"]
    entry = cli.Command("echo-test", "test only", "json:dumps")
    cli.COMMANDS.append(entry)
    try:
        args = cli.parser().parse_args(["echo-test"])
        assert args.command_entry is entry and entry.function() is json.dumps
    finally:
        cli.COMMANDS.remove(entry)


def test_console_script_has_the_same_subcommands():
    """pip installs a ``kamhttp`` console script: the subcommands of python -m kamhttp."""
    import pathlib
    import subprocess
    import sys
    script = pathlib.Path(sys.executable).parent / "kamhttp"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    module = subprocess.run([sys.executable, "-m", "kamhttp", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert done.returncode == module.returncode == 0
    assert done.stdout.split("\n", 1)[1] == module.stdout.split("\n", 1)[1]
