"""The modparam("http_client", ...) lines of a kamailio.cfg, read as Kamailio's lexer reads
them; the Debian kamailio.cfg shipped in kamailio-cfg/ loads unchanged."""
from __future__ import annotations

import pathlib
import textwrap

import pytest

import kamhttp
from kamhttp.errors import ConfigError
from kamhttp.config.kamailiocfg import parse_modparams


pytestmark = pytest.mark.usefixtures("fresh_config")


def statements(text: str, defines: dict[str, str] | None = None) -> list[tuple]:
    found, errors = parse_modparams(textwrap.dedent(text), pathlib.Path("/etc/k/kamailio.cfg"),
                                    defines)
    assert errors == []
    return [(name, value, where.rsplit(":", 1)[1]) for name, value, where in found]


def errors(text: str) -> list[ConfigError]:
    return parse_modparams(textwrap.dedent(text), pathlib.Path("k.cfg"))[1]


def test_lines_in_order_with_types():
    assert statements("""\
        loadmodule "http_client.so"
        modparam("http_client", "connection_timeout", 2)
        modparam("http_client", "httpcon", "api=>http://127.0.0.1/v1")
        modparam("http_client", "useragent", 'single quoted')
        """) == [("connection_timeout", 2, "2"), ("httpcon", "api=>http://127.0.0.1/v1", "3"),
                 ("useragent", "single quoted", "4")]


def test_other_modules_and_commented_lines_are_ignored():
    assert statements("""\
        modparam("tm", "fr_timer", 3000)
        # modparam("http_client", "maxdatasize", 1)
        // modparam("http_client", "maxdatasize", 2)
        /* modparam("http_client", "maxdatasize", 3)
           /* nested */ modparam("http_client", "maxdatasize", 4) */
        modparam("http_client", "maxdatasize", 5) # after
        request_route {
            $var(x) = "modparam(\\"http_client\\", \\"maxdatasize\\", 6)";
            if ($(ru{s.select,1,'.'}) == "x") { exit; }
        }
        """) == [("maxdatasize", 5, "6")]


def test_defines_as_values_and_module_name():
    assert statements("""\
        #!define TIMEOUT 3
        #!define CON "api=>http://h" \\
            ";timeout=1"
        !!define MOD "http_client"
        modparam("http_client", "connection_timeout", TIMEOUT)
        modparam(MOD, "httpcon", CON)
        """) == [("connection_timeout", 3, "5"), ("httpcon", "api=>http://h;timeout=1", "6")]


def test_ifdef_else_endif_and_command_line_defines():
    text = """\
        #!ifdef WITH_HTTP
        modparam("http_client", "maxdatasize", 1)
        #!else
        modparam("http_client", "maxdatasize", 2)
        #!endif
        #!ifndef WITH_HTTP
        modparam("http_client", "query_result", 0)
        #!endif
        """
    assert statements(text) == [("maxdatasize", 2, "4"), ("query_result", 0, "7")]
    assert statements(text, {"WITH_HTTP": ""}) == [("maxdatasize", 1, "2")]


def test_trydef_and_redefine():
    assert statements("""\
        #!define A 1
        #!trydef A 2
        #!trydef B 3
        #!redefine A 4
        modparam("http_client", "maxdatasize", A)
        modparam("http_client", "query_maxdatasize", B)
        """) == [("maxdatasize", 4, "5"), ("query_maxdatasize", 3, "6")]


def test_string_spread_over_lines():
    """Adjacent "..." strings are joined, whitespace and newlines between them dropped."""
    assert statements("""\
        modparam("http_client", "httpcon",
            "api=>http://127.0.0.1:8080"
            "/v1;timeout=2")
        """) == [("httpcon", "api=>http://127.0.0.1:8080/v1;timeout=2", "1")]


def test_string_escapes():
    assert statements(r'''modparam("http_client", "useragent", "a\tb\"c\\d\x41\101\q")''') == [
        ("useragent", 'a\tb"c\\dAA\\q', "1")]


@pytest.mark.parametrize("literal, value", [("0x10", 16), ("010", 8), ("101b", 5), ("0", 0),
                                            ("yes", 1), ("off", 0), ("- 2", -2)])
def test_integer_forms(literal, value):
    assert statements(f'modparam("http_client", "maxdatasize", {literal})') == [
        ("maxdatasize", value, "1")]


@pytest.mark.parametrize("module", ["HTTP_CLIENT", "http_.*", "(http_client|tm)"])
def test_module_name_is_an_anchored_case_insensitive_regex(module):
    assert statements(f'modparam("{module}", "maxdatasize", 1)') == [("maxdatasize", 1, "1")]


@pytest.mark.parametrize("module", ["http", "xhttp_client", "http_client2"])
def test_module_name_must_match_whole(module):
    assert statements(f'modparam("{module}", "maxdatasize", 1)') == []


def test_include_file_relative_to_the_including_file(tmp_path, monkeypatch):
    (tmp_path / "http.cfg").write_text('modparam("http_client", "maxdatasize", 9)\n')
    main = tmp_path / "kamailio.cfg"
    main.write_text('include_file "http.cfg"\nimport_file "missing.cfg"\n'
                    'modparam("http_client", "query_maxdatasize", 8)\n')
    monkeypatch.chdir("/")
    cfg = kamhttp.load_kamailio_cfg(main)
    assert (cfg.settings.maxdatasize, cfg.settings.query_maxdatasize) == (9, 8)


@pytest.mark.parametrize("text, what", [
    ('modparam("http_client", "maxdatasize", UNDEFINED)', "UNDEFINED is not #!defined"),
    ('modparam("http_client", "maxdatasize")', ", expected"),
    ('modparam("http_client", "maxdatasize", )', "value expected"),
    ('modparam("http_client", "maxdatasize", 1', ") expected"),
    ('modparam("http_client", "maxdatasize" 1)', ", expected"),
    ('modparamx("http_client", "maxdatasize", 1)', "modparamx is not supported"),
    ('modparam("http_client", "useragent", "unterminated)', "string not closed"),
    ("/* open comment", "not closed"),
    ("#!define A A\nmodparam(\"http_client\", \"maxdatasize\", A)", "expands without end"),
    ("#!define A 1\n#!define A 2\n", "already defined"),
    ("#!ifdef X\n", "without #!endif"),
    ('include_file "/nonexistent/x.cfg"', "cannot read"),
])
def test_errors_name_the_line(text, what):
    (err,) = errors(text)
    assert what in err.message and err.source.startswith("k.cfg:") and err.valid


def test_values_are_checked_like_modparam(tmp_path):
    path = tmp_path / "kamailio.cfg"
    path.write_text('modparam("http_client", "connection_timeout", "5")\n'
                    'modparam("http_client", "useragent", 5)\n'
                    'modparam("http_client", "httpcon", "a=http://h")\n')
    with pytest.raises(ConfigError) as info:
        kamhttp.load_kamailio_cfg(path)
    assert [e.source for e in info.value.errors] == [f"{path}:{n}" for n in (1, 2, 3)]
    assert kamhttp.http_connection_exists("a") == 0


def test_debian_kamailio_cfg_with_http_client_lines_loads(tmp_path):
    """The Debian kamailio.cfg (comments, #!ifdef blocks, routing logic, PVs, regexes) with
    http_client lines added loads: the routing script around them is not in the way."""
    debian = pathlib.Path("/etc/kamailio/kamailio.cfg")
    if not debian.exists():
        pytest.skip("Debian's kamailio package is not installed")
    text = debian.read_text()
    text = text.replace("####### Routing Logic ########", textwrap.dedent("""\
        loadmodule "http_client.so"
        modparam("http_client", "httpcon", "api=>http://127.0.0.1:8080/v1")
        #!ifdef WITH_MYSQL
        modparam("http_client", "maxdatasize", 1)
        #!endif
        ####### Routing Logic ########"""), 1)
    path = tmp_path / "kamailio.cfg"
    path.write_text(text)
    cfg = kamhttp.load_kamailio_cfg(path)
    assert set(cfg.connections) == {"api"} and cfg.settings.maxdatasize == 0
