"""The config_file format: every [verified 5.6.3] case of spec 4, as C behaves or as the
interface page decides (cited), plus the documented path rules (B5)."""
from __future__ import annotations

import pathlib
import textwrap

import pytest

import kamhttp
from kamhttp import config
from kamhttp.errors import ConfigError
from kamhttp.config.params import DEFAULT_USERAGENT


pytestmark = pytest.mark.usefixtures("fresh_config")


@pytest.fixture
def cfgfile(tmp_path):
    """Writes a config_file and returns its path."""
    def write(text: str, name: str = "http.cfg") -> pathlib.Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write


def load(path: pathlib.Path) -> config.Configuration:
    return config.read(path, "config_file")


def refused(path: pathlib.Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(path)
    return info.value


def test_sections_keys_values_and_comments(cfgfile):
    path = cfgfile("""\
        # connections for the routing API
        [api]   # trailing comment after the header
        url = http://127.0.0.1:8080/v1   # trailing comment after a value
        timeout = 3
        useragent = "kamailio \\"test\\" agent"
        verify_peer = no
        tlsversion = TLSv1.2

        [backup_2]
        url = https://10.0.0.2/v1
        """)
    cfg = load(path)
    api, backup = cfg.connections["api"], cfg.connections["backup_2"]
    assert (api.schema, api.url, api.timeout, api.verify_peer) == ("http", "127.0.0.1:8080/v1",
                                                                   3, 0)
    assert (api.useragent, api.tlsversion) == ('kamailio "test" agent', 6)
    assert (backup.schema, backup.url) == ("https", "10.0.0.2/v1")
    assert api.source == f"{path}:2"


def test_listcon_order_is_file_order(cfgfile):
    """4.4/7.1: sections are created last first, so listcon shows file order [verified]."""
    cfg = load(cfgfile("[one]\nurl = http://a\n[two]\nurl = http://b\n[three]\nurl = http://c\n"))
    assert cfg.order == ("one", "two", "three")


def test_keys_are_case_insensitive(cfgfile):
    """`URL =`, `Keepconnections =` work [verified 5.6.3]."""
    c = load(cfgfile("[a]\nURL = http://h\nKeepconnections = 1\n")).connections["a"]
    assert (c.url, c.keep_connections) == ("h", 1)


@pytest.mark.parametrize("spelling", ["keep_connections", "keepconnections"])
def test_both_spellings_of_keep_connections(cfgfile, spelling):
    """B4: the documented `keep_connections` (C: Unsupported option [verified 5.6.3]) and the C
    key `keepconnections` both work (interface page)."""
    c = load(cfgfile(f"[a]\nurl = http://h\n{spelling} = 1\n")).connections["a"]
    assert c.keep_connections == 1


@pytest.mark.parametrize("spelling", ["http_follow_redirect", "httpredirect"])
def test_both_spellings_of_httpredirect(cfgfile, spelling):
    """B4: `http_follow_redirect` (documented) and `httpredirect` (C) are booleans."""
    c = load(cfgfile(f"[a]\nurl = http://h\n{spelling} = no\n")).connections["a"]
    assert c.httpredirect == 0


def test_documented_example_file_loads(cfgfile):
    """The documentation's example 1.21 (C fails on http_follow_redirect [verified 5.6.3]),
    with a url filled in (its `url =` is empty, which is an error, B7)."""
    c = load(cfgfile("""\
        [default]
        url = http://127.0.0.1/
        timeout = 1
        maxdatasize = 4
        tlsversion = TLSv1.2
        verify_peer = yes
        client_key = default_key.pem
        client_cert = default_cert.pem
        http_follow_redirect = no
        """)).connections["default"]
    assert (c.timeout, c.maxdatasize, c.tlsversion, c.verify_peer, c.httpredirect) == \
        (1, 4, 6, 1, 0)


def test_repeated_key_last_wins(cfgfile):
    assert load(cfgfile("[a]\nurl = http://h\ntimeout = 1\ntimeout = 2\n")).connections[
        "a"].timeout == 2


def test_escapes_in_unquoted_values(cfgfile):
    """4.2: a backslash escapes `\\#`, and `\\<space>` is a space, in an unquoted value."""
    c = load(cfgfile("[a]\nurl = http://h/a\\#b\nuseragent = a\\ b\n")).connections["a"]
    assert (c.url, c.useragent) == ("h/a#b", "a b")


def test_quoted_values_keep_any_character(cfgfile):
    """`url = http://h/~user` fails unquoted; quoted, it works [verified 5.6.3]."""
    c = load(cfgfile('[a]\nurl = "http://h/~user?q=1 2"\n')).connections["a"]
    assert c.url == "h/~user?q=1 2"


def test_single_quotes_are_not_quote_characters(cfgfile):
    assert load(cfgfile("[a]\nurl = http://h\nuseragent = 'x'\n")).connections[
        "a"].useragent == "'x'"


def test_crlf_line_ends(cfgfile):
    c = load(cfgfile("[a]\r\nurl = http://h\r\ntimeout = 2\r\n")).connections["a"]
    assert (c.url, c.timeout) == ("h", 2)


def test_line_continuation(cfgfile):
    assert load(cfgfile('[a]\nurl = "http://h/\\\nlong"\n')).connections["a"].url == "h/long"


def test_empty_string_sets_null(cfgfile):
    """B6: the docs say `""` sets a string to null (C: an empty string [verified 5.6.3 for
    useragent, failover and username]); interface page: as documented."""
    kamhttp.modparam("client_cert", "/default.pem")
    path = cfgfile('[a]\nurl = http://h\nuseragent = ""\nfailover = ""\nusername = ""\n'
                   'client_cert = ""\n')
    kamhttp.modparam("config_file", str(path))
    c = config.current().connections["a"]
    assert (c.useragent, c.failover, c.username, c.client_cert) == (None, None, None, None)


@pytest.mark.parametrize("word, value", [
    ("yes", 1), ("TRUE", 1), ("enable", 1), ("Enabled", 1), ("1", 1), ("on", 1),
    ("no", 0), ("false", 0), ("disable", 0), ("disabled", 0), ("0", 0), ("OFF", 0),
    ('"yes"', 1)])
def test_boolean_words(cfgfile, word, value):
    assert load(cfgfile(f"[a]\nurl = http://h\nverify_host = {word}\n")).connections[
        "a"].verify_host == value


@pytest.mark.parametrize("name, value", [
    ("DEFAULT", 0), ("TLSv1", 1), ("SSLv2", 2), ("SSLv3", 3), ("TLSv1.0", 4), ("tlsv1.1", 5),
    ("TLSv1.2", 6), ("TLSv1.3", 7)])
def test_tlsversion_names(cfgfile, name, value):
    """4.2: the enum, case-insensitive; `TLSv1.3` (7) is kamhttp's addition (C has no name
    for it, B23)."""
    assert load(cfgfile(f"[a]\nurl = http://h\ntlsversion = {name}\n")).connections[
        "a"].tlsversion == value


def test_quoted_integer_with_sign(cfgfile):
    assert load(cfgfile('[a]\nurl = http://h\ntimeout = "+7"\n')).connections[
        "a"].timeout == 7


@pytest.mark.parametrize("text, line, what", [
    ("[con-1]\nurl = http://h\n", 1, "']' expected"),                   # [verified 5.6.3]
    ("url = http://h\n[a]\nurl = http://h\n", 1, "outside a section"),  # [verified 5.6.3]
    ("[a]\nurl = http://h/~user\n", 2, "invalid character 0x7e"),       # [verified 5.6.3]
    ("[a]\nurl = http://h\nverify_peer = maybe\n", 3, "boolean expected"),  # [verified]
    ("[a]\nurl = http://h\nverify_peer = 2\n", 3, "boolean expected"),
    ("[a]\nurl = http://h\ntlsversion = 6\n", 3, "unsupported enum value"),  # [verified]
    ("[a]\nurl = http://h\ntimeout = -1\n", 3, "invalid value"),        # '-' is a delimiter
    ("[a]\nurl = http://h\ntimeout = 5s\n", 3, "invalid integer"),
    ("[a]\nurl = http://h\nkeepconnections = yes\n", 3, "invalid integer"),
    ("[a]\nurl = http://h\nnosuch = 1\n", 3, "unsupported option 'nosuch'"),
    ("[a]\nurl http://h\n", 2, "'=' expected"),
    ("[a]\nurl = http://h extra\n", 2, "end of line expected"),
    ('[a]\nurl = "http://h\\q"\n', 2, "unsupported escape"),
    ('[a]\nurl = "http://h\n', 2, "closing '\"' missing"),
    ("[a]\nurl = http://h\n[]\n", 3, "invalid or missing connection name"),
    ("[a]\nurl = http://h\n[b\n", 3, "']' expected"),
    ("[a]\nurl = http://h\n=\n", 3, "syntax error"),
])
def test_syntax_errors_name_file_and_line(cfgfile, text, line, what):
    err = refused(cfgfile(text))
    assert err.source.endswith(f"http.cfg:{line}") and what in err.message
    assert err.valid


def test_quoted_negative_integer_is_out_of_range(cfgfile):
    """C accepts `timeout = "-1"` (TIMEOUT -1 in listcon [verified 5.6.3], a huge unsigned
    value at request time, B24). Decision (team): a bad integer value is an error."""
    err = refused(cfgfile('[a]\nurl = http://h\ntimeout = "-1"\n'))
    assert "out of range" in err.message and err.text == "-1"


def test_token_longer_than_512_characters_is_an_error(cfgfile):
    """The cfg_parser's token limit (MAX_TOKEN_LEN 512), kept as a bound."""
    assert load(cfgfile(f"[a]\nurl = http://{'h' * 505}\n")).connections["a"]
    assert "too long" in refused(cfgfile(f"[a]\nurl = http://{'h' * 506}\n")).message


def test_section_without_url_is_an_error(cfgfile):
    """B7: C crashes with SIGSEGV at startup [verified 5.6.3]; kamhttp refuses the file."""
    err = refused(cfgfile("[a]\ntimeout = 2\n"))
    assert err.source.endswith("http.cfg:1") and "[a] has no url" in err.message


@pytest.mark.parametrize("text", ["[a]\nurl =", "[a]\nurl =\n"])
def test_url_without_value_is_an_error(cfgfile, text):
    """`url =` at the end of the file: C logs "Option value missing" and crashes (B29)."""
    assert "value of 'url' missing" in refused(cfgfile(text)).message


@pytest.mark.parametrize("url", ["http:/h", "http://", "h", "http:h"])
def test_bad_url_is_an_error(cfgfile, url):
    """B7: C leaves a half-initialised connection and drops earlier sections [verified
    5.6.3]; kamhttp refuses the file and loads nothing."""
    err = refused(cfgfile(f"[good]\nurl = http://ok\n[bad]\nurl = {url}\n"))
    assert err.source.endswith("http.cfg:4") and "invalid url" in err.message


def test_every_error_is_reported(cfgfile):
    err = refused(cfgfile("[a]\nurl = http://h/~u\ntimeout = x\n[b-2]\n[c]\nuseragent = x\n"))
    assert [e.source.rsplit(":", 1)[1] for e in err.errors] == ["2", "3", "4", "5"]


def test_not_utf8_is_an_error(tmp_path):
    path = tmp_path / "bin.cfg"
    path.write_bytes(b"[a]\nurl = \"http://h/\xff\"\n")
    assert refused(path).source.endswith("bin.cfg:2")


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        kamhttp.modparam("config_file", str(tmp_path / "nope.cfg"))
    assert "cannot read" in info.value.message


def test_duplicate_names_name_both_places(cfgfile):
    """4.4 step 1: a duplicate name (against another section or an httpcon) is an error;
    C stops and drops earlier sections (B7), kamhttp refuses and names both places."""
    err = refused(cfgfile("[a]\nurl = http://h\n[a]\nurl = http://i\n"))
    assert err.source.endswith(":3") and ":1" in err.message
    path = cfgfile("[api]\nurl = http://h\n", "other.cfg")
    kamhttp.modparam("httpcon", "api=>http://x")
    kamhttp.modparam("config_file", str(path))
    with pytest.raises(ConfigError) as info:
        config.finalize()
    assert "modparam httpcon" in info.value.message and info.value.source.endswith(
        "other.cfg:1")


def test_a_failed_load_changes_nothing(cfgfile):
    kamhttp.modparam("httpcon", "keep=>http://h")
    before = config.current()
    with pytest.raises(ConfigError):
        kamhttp.modparam("config_file", str(cfgfile("[a]\nurl = http://h\n[b]\n")))
    assert config.current() is before


def test_config_file_connections_take_the_final_modparams(cfgfile):
    """2.1/4.4: config_file connections are built after every modparam, whatever the order."""
    kamhttp.modparam("config_file", str(cfgfile("[a]\nurl = http://h\n")))
    kamhttp.modparam("useragent", "final")
    kamhttp.modparam("httpproxy", "http://proxy")
    kamhttp.modparam("httpproxyport", 3128)
    kamhttp.modparam("maxdatasize", 77)
    c = config.current().connections["a"]
    assert (c.useragent, c.proxy, c.httpproxyport, c.maxdatasize) == ("final", "http://proxy",
                                                                       3128, 77)


def test_section_key_overrides_and_zero_port_disables_the_proxy(cfgfile):
    """3.20: "In order to disable a http proxy setting you can set the port to zero"."""
    kamhttp.modparam("httpproxy", "http://proxy")
    kamhttp.modparam("httpproxyport", 3128)
    kamhttp.modparam("config_file", str(cfgfile("[a]\nurl = http://h\nhttpproxyport = 0\n")))
    assert config.current().connections["a"].proxy is None


def test_file_connections_come_before_httpcon_in_listcon(cfgfile):
    """7.1 [verified 5.6.3]: config-file connections first in file order, then httpcon
    connections in reverse definition order."""
    kamhttp.modparam("httpcon", "h1=>http://h")
    kamhttp.modparam("config_file", str(cfgfile("[f1]\nurl = http://a\n[f2]\nurl = http://b\n")))
    kamhttp.modparam("httpcon", "h2=>http://h")
    assert config.current().order == ("f1", "f2", "h2", "h1")


def test_credentials_in_the_url_are_taken_out(cfgfile):
    """C keeps them in the URI (libcurl applies them, and listcon shows them); kamhttp takes
    them out like httpcon's so listcon masks the password; username/password keys win."""
    cfg = load(cfgfile("[a]\nurl = http://u:p%40ss@h:1/x?y=a@b\n"
                       "[b]\nurl = http://u:p@h\nusername = other\n"))
    a, b = cfg.connections["a"], cfg.connections["b"]
    assert (a.username, a.password, a.url) == ("u", "p%40ss", "h:1/x?y=a@b")
    assert (b.username, b.password, b.url) == ("other", "p", "h")


def test_defaults_when_nothing_is_set(cfgfile):
    c = load(cfgfile("[a]\nurl = http://h\n")).connections["a"]
    assert (c.useragent, c.verify_peer, c.verify_host, c.authmethod, c.timeout) == (
        DEFAULT_USERAGENT, 1, 2, 3, 0)


# --- path rules (B5): the documented ones, not C's (open as given) ------------------------

def test_relative_name_resolves_against_the_kamailio_cfg_directory(tmp_path, monkeypatch):
    """3.20: a name not starting with '.' or '/' is relative to the main config file's
    directory (C: the working directory, normally / [verified 5.6.3])."""
    (tmp_path / "conns.cfg").write_text("[a]\nurl = http://h\nclient_cert = certs/c.pem\n"
                                        "client_key = /abs/k.pem\n")
    kcfg = tmp_path / "kamailio.cfg"
    kcfg.write_text('modparam("http_client", "config_file", "conns.cfg")\n')
    monkeypatch.chdir("/")
    c = kamhttp.load_kamailio_cfg(kcfg).connections["a"]
    assert c.client_cert == str(tmp_path / "certs" / "c.pem")
    assert c.client_key == "/abs/k.pem"


def test_dot_names_resolve_against_the_working_directory(tmp_path, monkeypatch):
    sub = tmp_path / "sub"
    sub.mkdir()
    (tmp_path / "conns.cfg").write_text("[a]\nurl = http://h\nclient_cert = ./c.pem\n")
    kcfg = sub / "kamailio.cfg"
    kcfg.write_text('modparam("http_client", "config_file", "./conns.cfg")\n')
    monkeypatch.chdir(tmp_path)
    c = kamhttp.load_kamailio_cfg(kcfg).connections["a"]
    assert c.client_cert == str(tmp_path / "c.pem")


def test_modparam_outside_kamailio_resolves_against_the_working_directory(tmp_path,
                                                                            monkeypatch):
    (tmp_path / "conns.cfg").write_text("[a]\nurl = http://h\n")
    monkeypatch.chdir(tmp_path)
    kamhttp.modparam("config_file", "conns.cfg")
    assert kamhttp.http_connection_exists("a") == 1


def test_main_cfg_dir_inside_kamailio():
    """Inside Kamailio: the directory of its -f file, default /etc/kamailio."""
    assert config.main_cfg_dir([b"/usr/sbin/kamailio", b"-DD", b"-f", b"/opt/k/k.cfg", b""]) \
        == pathlib.Path("/opt/k")
    assert config.main_cfg_dir([b"kamailio", b"-f/x/y.cfg"]) == pathlib.Path("/x")
    assert config.main_cfg_dir([b"/usr/sbin/kamailio", b""]) == pathlib.Path("/etc/kamailio")
    assert config.main_cfg_dir([b"/usr/bin/python3", b"-f", b"/x/y"]) == pathlib.Path.cwd()


# --- keep_connections takes the boolean words (issue 11) ----------------------------------

@pytest.mark.parametrize("word, value", [
    ("yes", 1), ("no", 0), ("On", 1), ("off", 0), ("TRUE", 1), ("false", 0), ("enable", 1),
    ("enabled", 1), ("disable", 0), ("Disabled", 0), ('"yes"', 1)])
def test_keep_connections_takes_the_boolean_words(cfgfile, word, value):
    """The documentation writes the file's flags as words (verify_peer = yes); the documented
    key `keep_connections` takes them too.  C's own key `keepconnections` stays an integer,
    as in C (`keepconnections = yes`: Invalid integer value [verified 5.6.3])."""
    c = load(cfgfile(f"[a]\nurl = http://h\nkeep_connections = {word}\n")).connections["a"]
    assert c.keep_connections == value


@pytest.mark.parametrize("spelling", ["keep_connections", "keepconnections"])
@pytest.mark.parametrize("text, value", [("0", 0), ("1", 1), ("2", 2), ('"+1"', 1)])
def test_keep_connections_still_takes_integers(cfgfile, spelling, text, value):
    """What both spellings took before the words: integers, non-zero meaning yes (C keeps
    the handle for any non-zero value)."""
    c = load(cfgfile(f"[a]\nurl = http://h\n{spelling} = {text}\n")).connections["a"]
    assert c.keep_connections == value


@pytest.mark.parametrize("text, what, valid", [
    ("maybe", "boolean expected", "yes"), ("-1", "invalid value", "0 (off) or 1 (on)"),
    ('"-1"', "out of range", "0 (off) or 1 (on)")])
def test_keep_connections_refuses_other_values(cfgfile, text, what, valid):
    err = refused(cfgfile(f"[a]\nurl = http://h\nkeep_connections = {text}\n"))
    assert err.source.endswith("http.cfg:3") and what in err.message and valid in (err.valid or "")


def test_documented_flags_as_words_load(cfgfile):
    """The flags of a file written as the documentation writes them."""
    c = load(cfgfile("[a]\nurl = http://h\nverify_peer = yes\nhttp_follow_redirect = no\n"
                     "keep_connections = yes\n")).connections["a"]
    assert (c.verify_peer, c.httpredirect, c.keep_connections) == (1, 0, 1)
