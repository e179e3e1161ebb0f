"""Property: every loader, fed arbitrary text, loads or raises ConfigError - nothing else - and a
failed load leaves config.current() as it was (never a partial load).

Each loader gets 300 examples per run (CI); KAMHTTP_LONG=1 runs 100,000.  Half the inputs are
arbitrary text, half are built from the format's own fragments, to reach past the first line.
"""
from __future__ import annotations

import os
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kamhttp
from kamhttp import config
from kamhttp.errors import ConfigError

EXAMPLES = 100_000 if os.environ.get("KAMHTTP_LONG") == "1" else 300
BOUNDED = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES < 1000,
                   suppress_health_check=[HealthCheck.too_slow])


def built_from(*fragments: str) -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=300),
                     st.lists(st.sampled_from(fragments) | st.text(max_size=3),
                              max_size=40).map("".join))


HTTPCON = built_from("a", "api", "=>", "=", ">", "http", "https", "://", ":", "//", "@", "u:p@",
                     "h", "127.0.0.1:80", "/p", "?q=1", ";", "timeout", "=1", "useragent",
                     "failover", "=a", '"', "'", ",", " ", "\t", "\n", "verify_peer",
                     "tlsversion", "+", "-", "keep_connections", "TIMEOUT")
CFGFILE = built_from("[", "]", "a", "b_1", "url", " = ", "=", "http://h", "https://u:p@h/x",
                     "\n", "\r\n", "#", "\\", '"', "timeout", "1", "-1", "yes", "maybe",
                     "tlsversion", "TLSv1.2", "keepconnections", "useragent", "failover",
                     " ", "~", "é", "keep_connections", "http_follow_redirect")
YAML = built_from("modparams:", "\n", "  - ", "connections:", "  a:", "    url: ", "http://h",
                  "httpcon: ", "'a=>http://h'", "maxdatasize: ", "1", "yes", "x", ": ", "{",
                  "}", "[", "]", "-", "&a", "*a", "!!str", "null", '"', "timeout: ",
                  "failover: a", "tlsversion: TLSv1.2", "config_file: x")
KAMAILIO = built_from("modparam", "(", ")", '"http_client"', '"tm"', ", ", '"httpcon"',
                      '"a=>http://h"', '"maxdatasize"', "1", "0x1", "-", "#!define ", "X",
                      " 5\n", "#!ifdef ", "#!else\n", "#!endif\n", "\n", "/*", "*/", "//",
                      "#", "'", '"', "\\", "$var(x)", "$(", "route {", "}", "yes", ";")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("fuzz")


def loads_or_refuses(load) -> None:
    config.reset()
    kamhttp.modparam("httpcon", "existing=>http://127.0.0.1")
    before = config.current()
    try:
        cfg = load()
    except ConfigError as err:
        assert err.errors and all(isinstance(e, ConfigError) for e in err.errors)
        assert config.current() is before
        return
    assert cfg is config.current() and set(cfg.order) == set(cfg.connections)
    assert all(c.failover is None or c.failover in cfg.connections
               for c in cfg.connections.values())


@BOUNDED
@given(text=HTTPCON)
def test_httpcon(text):
    loads_or_refuses(lambda: (kamhttp.modparam("httpcon", text), config.finalize())[1])


@BOUNDED
@given(text=CFGFILE)
def test_config_file(workdir, text):
    path = workdir / "fuzz.cfg"
    path.write_text(text, encoding="utf-8")
    loads_or_refuses(lambda: (kamhttp.modparam("config_file", str(path)), config.finalize())[1])


@BOUNDED
@given(text=YAML)
def test_yaml(workdir, text):
    path = workdir / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    loads_or_refuses(lambda: kamhttp.load_config(path))


@BOUNDED
@given(text=KAMAILIO)
def test_kamailio_cfg(workdir, text):
    path = workdir / "kamailio.cfg"
    path.write_text(text, encoding="utf-8")
    loads_or_refuses(lambda: kamhttp.load_kamailio_cfg(path))


@BOUNDED
@given(data=st.binary(max_size=200))
def test_config_file_bytes(workdir, data):
    """Any bytes, not only UTF-8 text."""
    path = workdir / "bytes.cfg"
    path.write_bytes(data)
    loads_or_refuses(lambda: (kamhttp.modparam("config_file", str(path)), config.finalize())[1])


def teardown_module() -> None:
    config.reset()
