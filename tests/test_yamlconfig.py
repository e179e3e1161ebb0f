"""The YAML format of the interface page: ordered modparams, then connection sections."""
from __future__ import annotations

import pathlib
import textwrap

import pytest

import kamhttp
from kamhttp import config
from kamhttp.errors import ConfigError


pytestmark = pytest.mark.usefixtures("fresh_config")


@pytest.fixture
def yamlfile(tmp_path):
    def write(text: str, name: str = "http.yaml") -> pathlib.Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write


def refused(path: pathlib.Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        kamhttp.load_config(path)
    return info.value


def test_interface_page_example(yamlfile):
    cfg = kamhttp.load_config(yamlfile("""\
        modparams:
          - connection_timeout: 2
          - keep_connections: 1
          - httpcon: "api=>http://127.0.0.1:8080/v1;failover=api_backup"
        connections:
          api_backup:
            url: http://127.0.0.1:8081/v1
            timeout: 1
        """))
    api, backup = cfg.connections["api"], cfg.connections["api_backup"]
    assert (api.url, api.failover, api.timeout, api.keep_connections) == (
        "127.0.0.1:8080/v1", "api_backup", 2, 1)
    assert (backup.url, backup.timeout, backup.keep_connections) == ("127.0.0.1:8081/v1", 1, 1)
    assert cfg.settings.connection_timeout == 2
    assert cfg is config.current()


def test_modparams_apply_in_order(yamlfile):
    """An httpcon copies the values in force at its line, exactly like modparam lines."""
    cfg = kamhttp.load_config(yamlfile("""\
        modparams:
          - useragent: first
          - httpcon: "a=>http://h"
          - useragent: second
          - httpcon: "b=>http://h"
        """))
    assert (cfg.connections["a"].useragent, cfg.connections["b"].useragent) == ("first",
                                                                                "second")


def test_connections_take_the_final_modparams_and_come_first_in_listcon(yamlfile):
    cfg = kamhttp.load_config(yamlfile("""\
        connections:
          y1: {url: "http://a"}
          y2: {url: "http://b", useragent: own}
        modparams:
          - httpcon: "h=>http://h"
          - useragent: final
        """))
    assert (cfg.connections["y1"].useragent, cfg.connections["y2"].useragent) == ("final",
                                                                                  "own")
    assert cfg.order == ("y1", "y2", "h")


def test_connection_keys_like_the_config_file(yamlfile):
    """Both spellings, case-insensitive keys, boolean words, tlsversion names or numbers,
    null/"" for null, paths relative to the YAML file's directory."""
    path = yamlfile("""\
        connections:
          a:
            URL: https://u:secret@h/x
            keepconnections: 1
            http_follow_redirect: no
            verify_host: "disabled"
            tlsversion: TLSv1.3
            useragent: ""
            failover: null
            client_cert: certs/c.pem
          b:
            url: http://h
            tlsversion: 6
        """)
    cfg = kamhttp.load_config(path)
    a, b = cfg.connections["a"], cfg.connections["b"]
    assert (a.schema, a.url, a.username, a.password) == ("https", "h/x", "u", "secret")
    assert (a.keep_connections, a.httpredirect, a.verify_host, a.tlsversion) == (1, 0, 0, 7)
    assert (a.useragent, a.failover) == (None, None)
    assert a.client_cert == str(path.parent / "certs" / "c.pem")
    assert b.tlsversion == 6


def test_yaml_booleans_count_as_integers_for_modparams(yamlfile):
    assert kamhttp.load_config(yamlfile("modparams:\n  - keep_connections: yes\n")
                               ).settings.keep_connections == 1


def test_config_file_named_in_yaml_resolves_against_its_directory(yamlfile, tmp_path,
                                                                  monkeypatch):
    (tmp_path / "conns.cfg").write_text("[f]\nurl = http://h\n")
    path = yamlfile("modparams:\n  - config_file: conns.cfg\n")
    monkeypatch.chdir("/")
    assert set(kamhttp.load_config(path).connections) == {"f"}


@pytest.mark.parametrize("text, line, what", [
    ("modparams:\n  - connection_timeout: \"2\"\n", 2, "takes an integer"),
    ("modparams:\n  - nosuch: 1\n", 2, "unknown http_client modparam"),
    ("modparams:\n  - httpcon: [1]\n", 2, "not a single value"),
    ("modparams:\n  - {a: 1, b: 2}\n", 2, "one name: value"),
    ("modparams: 3\n", 1, "must be a list"),
    ("connections:\n  x:\n    timeout: 1\n", 2, "has no url"),
    ("connections:\n  x:\n    url: http:/h\n", 3, "invalid url"),
    ("connections:\n  x:\n    url: http://h\n    timeout: yes\n", 4, "takes an integer"),
    ("connections:\n  x:\n    url: http://h\n    timeout: -1\n", 4, "out of range"),
    ("connections:\n  x:\n    url: http://h\n    password: 1234\n", 4, "takes a string"),
    ("connections:\n  x:\n    url: http://h\n    nosuch: 1\n", 4, "unknown key"),
    ("connections:\n  x:\n    url: http://h\n    tlsversion: TLSv9\n", 4, "tlsversion"),
    ("connections:\n  x:\n    url: http://h\n    keepconnections: 1\n"
     "    keep_connections: 1\n", 5, "given twice"),
    ("connections:\n  x: {url: 'http://h'}\n  x: {url: 'http://i'}\n", 3, "given twice"),
    ("connections:\n  'a b': {url: 'http://h'}\n", 2, "invalid connection name"),
    ("connections: [1]\n", 1, "must be a mapping"),
    ("other: 1\n", 1, "unknown top-level key"),
    ("- 1\n", 1, "must be a mapping"),
    ("modparams: [\n", 2, "YAML syntax error"),
])
def test_errors_name_file_and_line(yamlfile, text, line, what):
    err = refused(yamlfile(text))
    assert err.source.endswith(f"http.yaml:{line}") and what in err.message and err.valid


def test_every_error_is_reported_in_file_order(yamlfile):
    err = refused(yamlfile("""\
        modparams:
          - maxdatasize: x
          - httpcon: "a=http://h"
        connections:
          c: {timeout: 1}
        bogus: 1
        """))
    assert [e.source.rsplit(":", 1)[1] for e in err.errors] == ["2", "3", "5", "6"]


def test_a_failed_load_changes_nothing(yamlfile):
    kamhttp.modparam("httpcon", "keep=>http://h")
    before = config.current()
    refused(yamlfile("modparams:\n  - httpcon: \"new=>http://h;failover=none\"\n"))
    assert config.current() is before and kamhttp.http_connection_exists("new") == 0


def test_loading_twice_adds_on_top(yamlfile):
    """A second load acts like more modparam lines: new connections are added, a name
    already defined is an error."""
    kamhttp.load_config(yamlfile("modparams:\n  - httpcon: \"a=>http://h\"\n", "one.yaml"))
    cfg = kamhttp.load_config(yamlfile("modparams:\n  - httpcon: \"b=>http://h\"\n",
                                       "two.yaml"))
    assert cfg.order == ("b", "a")
    err = refused(yamlfile("connections:\n  a: {url: 'http://x'}\n", "three.yaml"))
    assert "duplicate connection name 'a'" in err.message and "one.yaml:2" in err.message


def test_empty_file_is_the_defaults(yamlfile):
    cfg = kamhttp.load_config(yamlfile(""))
    assert dict(cfg.connections) == {} and cfg.settings == config.Settings()


def test_listcon_order_yaml_then_config_file_then_httpcon(yamlfile, tmp_path):
    """Decision: YAML connections are created last (after the config_file sections, like one
    more file read at the end), so listcon shows them first, in mapping order."""
    (tmp_path / "f.cfg").write_text("[f1]\nurl = http://a\n[f2]\nurl = http://b\n")
    cfg = kamhttp.load_config(yamlfile("""\
        modparams:
          - httpcon: "h1=>http://h"
          - config_file: f.cfg
          - httpcon: "h2=>http://h"
        connections:
          y1: {url: "http://a"}
          y2: {url: "http://b"}
        """))
    assert cfg.order == ("y1", "y2", "f1", "f2", "h2", "h1")
