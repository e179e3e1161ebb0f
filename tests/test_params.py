"""The modparam table: every documented parameter (3.1-3.22 and timeout_mode) with its
documented type and default, the documentation's own examples, and coerce()'s checks."""
from __future__ import annotations

import pytest

import kamhttp
from kamhttp import config
from kamhttp.errors import ConfigError
from kamhttp.config.params import DEFAULT_USERAGENT, PARAMS, Scope, Settings, coerce


pytestmark = pytest.mark.usefixtures("fresh_config")


DOCUMENTED = {   # name: (type, default) as the documentation gives them (decisions noted)
    "httpredirect": (int, 1),          # documented 1; C's code default is 0 (B2)
    "httpproxy": (str, None),
    "httpproxyport": (int, 0),         # documented "(string)", an int in C (B25)
    "useragent": (str, DEFAULT_USERAGENT),
    "maxdatasize": (int, 0),
    "connection_timeout": (int, 0),    # 0 = "the default", 4 s (effective_timeout)
    "timeout_mode": (int, 1),
    "client_cert": (str, None),
    "client_key": (str, None),
    "cacert": (str, None),
    "cipher_suites": (str, None),
    "verify_peer": (int, 1),
    "verify_host": (int, 2),
    "tlsversion": (int, 0),
    "authmethod": (int, 3),
    "keep_connections": (int, 0),
    "query_result": (int, 1),
    "query_maxdatasize": (int, 0),
    "httpcon": (str, None),
    "config_file": (str, None),
    "netinterface": (str, None),
    "response_headers": (int, 0),
}


ADDITIONS = {   # kamhttp's own parameters (the outage guard, the asynchronous path)
    "breaker_failures": (int, 0),
    "breaker_ratio": (int, 0),
    "breaker_window": (int, 10),
    "breaker_cooldown": (int, 5000),
    "max_connecting": (int, 0),
    "latency_metrics": (int, 0),
    "async_queue_size": (int, 8 << 20),
    "async_max_transfers": (int, 1000),
    "async_max_per_connection": (int, 0),
}


def test_table_matches_the_documentation():
    assert {name: (p.kind, p.default) for name, p in PARAMS.items()} == DOCUMENTED | ADDITIONS


def test_settings_defaults():
    s = Settings()
    for name, (_, default) in DOCUMENTED.items():
        if PARAMS[name].scope is not Scope.LOADER:
            assert getattr(s, name) == default, name


def test_default_timeout_is_4_seconds():
    """3.6: "Default value is 4 seconds" (master: 0, then 4 or 4000 in mod_init)."""
    assert Settings().effective_timeout(0) == 4


def test_default_useragent_has_kamailios_format():
    """2.2: NAME (VERSION (ARCH/OS)), like `kamailio (5.6.3 (x86_64/linux))`."""
    name, rest = DEFAULT_USERAGENT.split(" (", 1)
    assert name == "kamhttp" and rest.endswith("))") and "/" in rest


@pytest.mark.parametrize("name, value", [          # the documentation's examples 1.1-1.23
    ("httpredirect", 0), ("httpproxy", ""), ("httpproxyport", 8042),
    ("useragent", "Secret HTTP REST grabber 0.42"), ("maxdatasize", 2000),
    ("connection_timeout", 2), ("timeout_mode", 1), ("client_cert", "/var/certs/"),
    ("client_key", "/var/certs/"), ("cacert", "/var/certs/ca/edvina-sip-ca.pem"),
    ("cipher_suites", "ecdhe_ecdsa_aes_128_gcm_sha_256,rsa_aes_128_gcm_sha_256"),
    ("verify_peer", 1), ("verify_host", 2), ("tlsversion", 6), ("authmethod", 3),
    ("keep_connections", 1), ("query_result", 0), ("query_maxdatasize", 2048),
    ("netinterface", "eth0"), ("response_headers", 1),
])
def test_documented_examples_apply(name, value):
    kamhttp.modparam(name, value)
    assert getattr(config.current().settings, name) == value


@pytest.mark.parametrize("name", [n for n, p in PARAMS.items() if p.kind is int])
def test_a_string_where_an_integer_is_due_is_an_error(name):
    """Kamailio's core refuses a modparam of the wrong type; so does kamhttp."""
    with pytest.raises(ConfigError) as info:
        coerce(name, "1", f"modparam {name}")
    assert info.value.valid == "an unquoted integer" and info.value.source == f"modparam {name}"


@pytest.mark.parametrize("name", [n for n, p in PARAMS.items() if p.kind is str])
def test_an_integer_where_a_string_is_due_is_an_error(name):
    with pytest.raises(ConfigError) as info:
        coerce(name, 1, "x")
    assert "takes a string" in info.value.message


@pytest.mark.parametrize("name, value", [
    ("timeout_mode", 3), ("tlsversion", 8), ("tlsversion", -1), ("authmethod", 0),
    ("authmethod", 32), ("httpproxyport", 65536), ("maxdatasize", -1),
    ("connection_timeout", 2**31), ("verify_peer", -1)])
def test_out_of_range(name, value):
    """tlsversion >= 8: C resets it to 0 only in mod_init, after httpcon lines copied it
    (B23); kamhttp refuses it at its line."""
    with pytest.raises(ConfigError) as info:
        coerce(name, value, "x")
    assert "out of range" in info.value.message and info.value.text == str(value)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        coerce("http_redirect", 1, "x")
    assert "httpredirect" in info.value.valid


def test_nul_byte_in_a_string_is_an_error():
    with pytest.raises(ConfigError):
        coerce("useragent", "a\x00b", "x")


def test_request_time_scopes():
    """2.1: cacert, netinterface (and master's timeout_mode, response_headers) are read at
    request time; query_* only by the direct-URL functions."""
    assert {n for n, p in PARAMS.items() if p.scope is Scope.REQUEST} == {
        "cacert", "netinterface", "timeout_mode", "response_headers"}
    assert {n for n, p in PARAMS.items() if p.scope is Scope.DIRECT} == {
        "query_result", "query_maxdatasize"}


def test_settings_is_the_value_modparams_of_the_table():
    """Settings is written out for the type checker; it must hold exactly the value
    modparams of PARAMS, each with the table's type and default."""
    import dataclasses
    import typing
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values = {name for name, p in PARAMS.items() if p.scope is not Scope.LOADER}
    assert set(fields) == values
    hints = typing.get_type_hints(Settings)
    for name in values:
        param = PARAMS[name]
        assert fields[name].default == param.default, name
        assert param.kind in typing.get_args(hints[name]) or hints[name] is param.kind, name


def test_connection_options_are_the_modparams_with_a_key():
    """A per-connection option is a PARAMS row with a key plus its ConnectionOptions field
    (connection_timeout's key is the connection's own ``timeout``)."""
    import dataclasses
    from kamhttp.config.connection import CONNECTION_KEYS, Connection
    from kamhttp.config.params import ConnectionOptions
    keyed = {p.name for p in PARAMS.values() if p.key is not None}
    assert {f.name for f in dataclasses.fields(ConnectionOptions)} == keyed - {
        "connection_timeout"}
    assert {k.modparam for k in CONNECTION_KEYS.values() if k.modparam} == keyed
    connection_fields = {f.name for f in dataclasses.fields(Connection)}
    assert {k.name for k in CONNECTION_KEYS.values()} <= connection_fields
