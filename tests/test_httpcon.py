"""The httpcon grammar: every [verified 5.6.3] case of spec 3.1 and 3.2, as C behaves or as the
interface page decides (cited in the docstring)."""
from __future__ import annotations

import logging

import pytest

from kamhttp.config.connection import CONNECTION_KEYS
from kamhttp.errors import ConfigError
from kamhttp.config.httpcon import parse_httpcon
from kamhttp.config.params import DEFAULT_USERAGENT, Settings

DEFAULTS = Settings()


def con(text: str, defaults: Settings = DEFAULTS, warnings: list[str] | None = None):
    return parse_httpcon(text, defaults, "modparam httpcon", warnings)


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        con(text)
    return info.value


def test_full_definition():
    c = con("api=>https://user:secret@127.0.0.1:8443/v1?x=1;timeout=3;useragent=ua")
    assert (c.name, c.schema, c.url) == ("api", "https", "127.0.0.1:8443/v1?x=1")
    assert (c.username, c.password, c.timeout, c.useragent) == ("user", "secret", 3, "ua")
    assert c.source == "modparam httpcon"


def test_whitespace_around_name_and_arrow():
    """3.1 steps 1-5: WS before the name, between name and '=', after '=>'."""
    c = con(" \t\napi \t=> \thttp://h")
    assert (c.name, c.schema, c.url) == ("api", "http", "h")


def test_name_may_hold_any_character_but_equals_and_ws():
    """3.1 step 2: '-', '.', '$' ... are part of the name."""
    assert con("a-b.c$d=>http://h").name == "a-b.c$d"


def test_empty_name_is_an_error():
    """C accepts `=>http://h` as a connection named "" [verified 5.6.3]. Decision: the
    documented syntax is `<connection-name>=>...`; a nameless connection cannot be meant,
    so kamhttp refuses it (README: Differences from the C module)."""
    err = error("=>http://h")
    assert "name is empty" in str(err) and err.source == "modparam httpcon"


@pytest.mark.parametrize("text, why", [
    ("", "empty"), ("  \t", "empty"),
    ("a b=>http://h", "'=>' expected"),           # [verified 5.6.3]
    ("a=http://h", "'>'"),                         # [verified 5.6.3]
    ("a= >http://h", "'>'"),                       # [verified 5.6.3]
    ("a=>127.0.0.1:18181", "'//' expected"),       # [verified 5.6.3]
    ("a=>http:/x", "'//' expected"),               # [verified 5.6.3]
    ("a=>h", "no scheme"),
    ("abc", "'=>' expected"),
])
def test_syntax_errors(text, why):
    err = error(text)
    assert why in err.message
    assert err.text == text
    assert err.valid.startswith("name=>scheme://")


def test_schema_is_not_checked():
    """3.1 step 5: ftp is accepted here and fails at request time [verified 5.6.3]."""
    assert con("a=>ftp://h/x").schema == "ftp"


def test_password_may_hold_colons():
    """3.1 step 7: `user:pa:ss@h` gives user `user`, password `pa:ss` [verified 5.6.3]."""
    c = con("a=>http://user:pa:ss@h/x")
    assert (c.username, c.password, c.url) == ("user", "pa:ss", "h/x")


def test_user_without_password():
    c = con("a=>http://user@h")
    assert (c.username, c.password, c.url) == ("user", None, "h")


def test_at_sign_after_the_authority_is_not_a_credential_separator():
    """B11 [verified 5.6.3: C gives user `h`, password `1/p?e=a`, URL `h:1/x`]. Decision
    (interface page): an `@` counts as the end of credentials only inside the authority."""
    c = con("x=>http://h:1/p?e=a@h:1/x")
    assert (c.username, c.password, c.url) == (None, None, "h:1/p?e=a@h:1/x")


def test_at_sign_in_parameters_is_not_a_credential_separator():
    """B11: an `@` inside the ;params is not a credential separator either."""
    c = con("x=>http://h;useragent=me@example.org")
    assert (c.username, c.url, c.useragent) == (None, "h", "me@example.org")


def test_no_percent_decoding_of_credentials():
    c = con("a=>http://us%40er:p%3Aw@h")
    assert (c.username, c.password) == ("us%40er", "p%3Aw")


def test_empty_hostpath_is_accepted():
    """3.1 step 8: `a=>http://` is accepted [verified 5.6.3]."""
    c = con("a=>http://")
    assert (c.schema, c.url) == ("http", "")


def test_trailing_whitespace_of_the_url_is_kept():
    assert con("a=>http://h/x ").url == "h/x "


def test_empty_parameter_list_is_accepted():
    """3.1 step 9: a string ending with `;` [verified 5.6.3]."""
    c = con("a=>http://h;")
    assert (c.url, c.timeout) == ("h", 0)


def test_quoted_value_keeps_spaces_and_semicolons():
    """`useragent="a b;c"` gives `a b;c` [verified 5.6.3]; single quotes work the same."""
    assert con('a=>http://h;useragent="a b;c"').useragent == "a b;c"
    assert con("a=>http://h;useragent='x y'").useragent == "x y"


def test_comma_silently_ends_the_parameter_list():
    """`useragent=a,b;timeout=3` gives UA `a` and timeout 3 is not applied [verified 5.6.3];
    the ignored text is reported as a warning (for `check`)."""
    warnings: list[str] = []
    c = con("a=>http://h;useragent=a,b;timeout=3", warnings=warnings)
    assert (c.useragent, c.timeout) == ("a", 0)
    assert len(warnings) == 1 and "b;timeout=3" in warnings[0]


def test_whitespace_around_equals_and_after_semicolon():
    c = con("a=>http://h;timeout = 3; maxdatasize=\t9")
    assert (c.timeout, c.maxdatasize) == (3, 9)


@pytest.mark.parametrize("text, why", [
    ("a=>http://h;timeout=5;", "parameter name missing after ';'"),   # [verified 5.6.3]
    ("a=>http://h;timeout=5 x", "unexpected 'x'"),                    # [verified 5.6.3]
    ('a=>http://h;useragent="abc', "unterminated"),
    ("a=>http://h;useragent=;timeout=1", "missing"),
])
def test_parameter_syntax_errors(text, why):
    err = error(text)
    assert why in err.message and err.text == text


def test_first_occurrence_of_a_repeated_parameter_wins():
    """`timeout=1;timeout=3` gives 1 [verified 5.6.3]."""
    assert con("a=>http://h;timeout=1;timeout=3").timeout == 1


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def config_log():
    """The records of the logger "kamhttp.config" (a handler of its own, whatever else is
    attached to the kamhttp loggers)."""
    handler, logger = Records(), logging.getLogger("kamhttp.config")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def test_parameter_names_are_case_sensitive_and_unknown_ones_ignored(config_log):
    """`TIMEOUT=7` is unknown [verified 5.6.3]; unknown names are logged at ERROR and
    ignored, not fatal [verified 5.6.3]; the checker reports them (warnings)."""
    warnings: list[str] = []
    c = con("a=>http://h;TIMEOUT=7;bogus=1", warnings=warnings)
    assert c.timeout == 0
    assert [r.levelno for r in config_log] == [logging.ERROR, logging.ERROR]
    assert "'TIMEOUT'" in config_log[0].getMessage()
    assert [("'TIMEOUT'" in w, "'bogus'" in w) for w in warnings] == [(True, False),
                                                                    (False, True)]


@pytest.mark.parametrize("key", ["url", "username", "password", "cacert", "netinterface"])
def test_keys_not_settable_per_httpcon_are_unknown(key):
    warnings: list[str] = []
    con(f"a=>http://h;{key}=x", warnings=warnings)
    assert len(warnings) == 1 and repr(key) in warnings[0]


def test_integer_with_plus_sign():
    """`timeout=+7` gives 7 [verified 5.6.3]."""
    assert con("a=>http://h;timeout=+7").timeout == 7


@pytest.mark.parametrize("param", ["timeout=", "timeout", "timeout=abc", "timeout=-1",
                                   "maxdatasize=1k", "timeout=99999999999"])
def test_bad_integer_is_an_error(param):
    """C: `timeout=` gives 0 silently (B24) and `timeout` (no value) or a non-number warns and
    takes the default [verified 5.6.3]. Decision (team): a bad integer value is an error."""
    err = error(f"a=>http://h;{param}")
    assert err.text == param and err.valid.startswith(param.split("=")[0] + "=<")
    assert "'a'" in err.message


@pytest.mark.parametrize("param, valid", [
    ("httpredirect=2", "0 or 1"), ("verify_peer=2", "0 or 1"),
    ("tlsversion=8", "7 (TLSv1.3)"), ("httpproxyport=70000", "0..65535"),
    ("authmethod=0", "bitmap"), ("authmethod=32", "bitmap"),
])
def test_out_of_range_is_an_error(param, valid):
    """C warns and uses the default (3.2); kamhttp refuses (team decision)."""
    err = error(f"a=>http://h;{param}")
    assert valid in err.valid and err.text == param


@pytest.mark.parametrize("key", [k.name for k in CONNECTION_KEYS.values()
                                 if k.in_httpcon and k.kind != "str"])
def test_every_integer_key_says_what_is_valid(key):
    """Each integer-valued key names its range, from the modparam it defaults from."""
    err = error(f"a=>http://h;{key}=-1")
    assert err.text == f"{key}=-1" and err.valid.startswith(f"{key}=<")
    assert err.valid != f"{key}=<None>"


def test_every_config_file_key_is_accepted():
    """B12: the per-connection keys of the config_file are accepted in httpcon too."""
    c = con("a=>http://h;failover=b;useragent=u;verify_peer=0;verify_host=0;client_cert=c.pem;"
            "client_key=k.pem;cipher_suites=ECDHE;tlsversion=7;timeout=2;maxdatasize=10;"
            "httpredirect=0;httpproxy=http://p;httpproxyport=3128;authmethod=1;"
            "keep_connections=1")
    assert (c.failover, c.useragent, c.verify_peer, c.verify_host) == ("b", "u", 0, 0)
    assert (c.client_cert, c.client_key, c.cipher_suites) == ("c.pem", "k.pem", "ECDHE")
    assert (c.tlsversion, c.timeout, c.maxdatasize, c.httpredirect) == (7, 2, 10, 0)
    assert (c.httpproxy, c.httpproxyport, c.proxy) == ("http://p", 3128, "http://p")
    assert (c.authmethod, c.keep_connections) == (1, 1)


def test_verify_host_takes_any_number():
    """3.2: verify_host is a uint (non-zero becomes 2 at request time)."""
    assert con("a=>http://h;verify_host=2").verify_host == 2


def test_string_values_without_equals():
    """3.2: useragent with no `=` gives "", client_cert/failover give NULL; `client_cert=`
    gives "" (non-NULL)."""
    c = con("a=>http://h;useragent;client_cert;failover")
    assert (c.useragent, c.client_cert, c.failover) == ("", None, None)
    assert con("a=>http://h;useragent=").useragent == ""
    assert con("a=>http://h;timeout=1;client_cert=").client_cert == ""


def test_defaults_come_from_the_settings_in_force():
    """2.1: the connection copies the values in force at its line."""
    settings = Settings().with_value("useragent", "mine").with_value("verify_peer", 0) \
        .with_value("maxdatasize", 5).with_value("keep_connections", 1)
    c = con("a=>http://h;maxdatasize=7", settings)
    assert (c.useragent, c.verify_peer, c.maxdatasize, c.keep_connections) == ("mine", 0, 7, 1)
    assert con("a=>http://h").useragent == DEFAULT_USERAGENT


def test_errors_and_repr_never_show_the_password():
    """A syntax error on a line with credentials names the text with the password masked;
    a Connection's repr leaves the password out (masked() shows ********)."""
    err = error("a=>http:/user:Pw-9x@h")
    assert "Pw-9x" not in str(err) and err.text.startswith("a=>http:") and "********@h" in err.text
    assert "Pw-9x" not in error("a=>http://user:Pw-9x@h;timeout=5 x").text
    c = con("a=>http://user:Pw-9x@h")
    assert "Pw-9x" not in repr(c) and c.masked()["password"] == "********"
