"""The modparam("http_client", ...) lines of a kamailio.cfg, read as Kamailio's lexer reads
them; the Debian kamailio.cfg shipped in kamailio-cfg/ loads unchanged."""
from __future__ import annotations

import ctypes
import ctypes.util
import locale
import pathlib
import platform
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kamhttp
from kamhttp.errors import ConfigError
from kamhttp.config.kamailiocfg import SubstRule, parse_modparams
from kamhttp.config.syntax import ParseError


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


# --- #!defenv, #!subst, #!substdef: each value as Kamailio 5.6.3 loads it [verified 5.6.3,
# the same directives with the values printed by xlog in event_route[core:worker-one-init]] ---

def values(text: str, defines: dict[str, str] | None = None) -> list:
    return [value for _name, value, _line in statements(text, defines)]


def test_substdef_substitutes_in_strings_and_defines_the_name():
    assert statements("""\
        #!substdef "/API_HOST/127.0.0.1:8080/"
        #!substdef "/TIMEOUT/3/"
        modparam("http_client", "httpcon", "api=>http://API_HOST/v1")
        modparam("http_client", "connection_timeout", TIMEOUT)
        modparam("http_client", "useragent", "TIMEOUT API_HOST")
        #!ifdef API_HOST
        modparam("http_client", "maxdatasize", 1)
        #!endif
        """) == [("httpcon", "api=>http://127.0.0.1:8080/v1", "3"),
                 ("connection_timeout", 3, "4"), ("useragent", "3 127.0.0.1:8080", "5"),
                 ("maxdatasize", 1, "7")]


def test_substdefs_defines_a_string():
    assert values("""\
        #!substdefs "/AGENT/kamailio http/"
        modparam("http_client", "useragent", AGENT)
        """) == ["kamailio http"]


def test_bang_bang_forms():
    assert values("""\
        !!substdef "/PORT/8080/"
        !!subst "/h1/127.0.0.1/"
        modparam("http_client", "httpcon", "a=>http://h1:PORT/")
        modparam("http_client", "httpproxyport", PORT)
        """) == ["a=>http://127.0.0.1:8080/", 8080]


@pytest.mark.parametrize("flags, before, after", [
    ("", "xfooyFOO foo", "xbaryFOO foo"), ("g", "xfooyFOO foo", "xbaryFOO bar"),
    ("gi", "xfooyFOO foo", "xbarybar bar"), ("i", "xFOOyfoo", "xbaryfoo")])
def test_subst_flags_g_and_i(flags, before, after):
    assert values(f"""\
        #!subst "/foo/bar/{flags}"
        modparam("http_client", "useragent", "{before}")
        """) == [after]


def test_subst_replacement_takes_the_match_and_its_groups():
    """\\0 the match, \\1 a group, \\2 (no such group) nothing."""
    assert values(r'''#!subst "/(a+)b/<\1|\0|\2>/"
modparam("http_client", "useragent", "caaabaab")''') == ["c<aaa|aaab|>aab"]


def test_subst_replacement_escapes():
    r"""In '...' the text is verbatim: \/ is the separator, \$ a dollar, \t a tab, \\ one
    backslash."""
    assert values(r"""#!subst '/a\/b/<\/\$\t\\>/'
modparam("http_client", "useragent", "xa/by")""") == ["x</$\t\\>y"]


@pytest.mark.parametrize("rule, before, after", [
    ("/z.z/[dot]/", r"z\nz zaz", "z\n[dot]az"),       # . stops at a newline
    ("/z.z/[dot]/s", r"z\nz zaz", "[dot] zaz"),
    ("/[^q]w/<nl>/", r"q\nw", "q\nw"),                  # so does [^...]
    ("/[^q]w/<nl>/s", r"q\nw", "q<nl>"),
    ("/end$/END/g", r"end\nend", "END\nEND"),         # $ before a newline, and at the end
    ("/^l/L/g", r"ll\nll", "Ll\nLl"),                 # ^ after a newline...
    ("/^l/L/gs", r"ll\nll", "Ll\nll"),
    ("/^a/X/g", "aaa", "Xaa"),                        # ...not where the last match ended
    (r"/^a|\r/X/g", r"\ra", "XX"),                    # ...unless it ended with a CR
    ("/b$/Y/g", "bbb", "bbY"),
    ("/k|kk/K/", "kkk", "Kk"),                        # leftmost-longest, not first
    (r"/(ab|a)(c|bcd)/[\0]/", "abcd", "[abcd]"),
    (r"/[\.]/<bs>/", r"c\\d.", "c<bs>d."),            # \ is itself in a bracket
    ("/[[:digit:]]+/#/g", "a1b22c333", "a#b#c#"),
    ("/é+/E/", "éé", "Eé"),                           # bytes: + repeats the last byte
])
def test_subst_regex_as_glibc_reads_it(rule, before, after):
    assert values(f'#!subst "{rule}"\nmodparam("http_client", "useragent", "{before}")') \
        == [after]


def test_subst_applies_after_define_expansion_and_to_every_string_form():
    assert values("""\
        #!subst "/foo/bar/"
        #!define D "foo"
        modparam("http_client", "useragent", D)
        modparam("http_client", "useragent", 'single foo')
        modparam("http_client", "useragent", "fo"
                                             "o")
        modparam("http_client", "maxdatasize", 0x1)
        """) == ["bar", "single bar", "bar", 1]


def test_subst_rules_run_in_order_and_on_later_directives():
    """The third rule's own string is rewritten by the first two: BBB gives world-x."""
    assert values("""\
        #!substdef "/AAA/hello/"
        #!subst "/hello/world/"
        #!substdef "/BBB/AAA-x/"
        modparam("http_client", "useragent", "AAA BBB")
        """) == ["world world-x"]


def test_subst_on_module_and_parameter_names():
    assert statements("""\
        #!subst "/HTTPMOD/http_client/"
        #!subst "/^ua$/useragent/"
        modparam("HTTPMOD", "ua", "x")
        """) == [("useragent", "x", "3")]


def test_subst_inside_a_false_ifdef_is_not_applied():
    assert values("""\
        #!ifdef NOT_DEFINED
        #!subst "/a/b/"
        #!substdef "/X/1/"
        #!endif
        #!ifndef X
        modparam("http_client", "useragent", "a")
        #!endif
        """) == ["a"]


def test_subst_rewrites_include_file_names(tmp_path, monkeypatch):
    (tmp_path / "http.cfg").write_text('modparam("http_client", "maxdatasize", 9)\n')
    main = tmp_path / "kamailio.cfg"
    main.write_text(f'#!substdef "!CFGDIR!{tmp_path}!"\ninclude_file "CFGDIR/http.cfg"\n')
    monkeypatch.chdir("/")
    assert kamhttp.load_kamailio_cfg(main).settings.maxdatasize == 9


def test_defenv_forms(monkeypatch):
    monkeypatch.setenv("KAMHTTP_TEST_TIMEOUT", "7")
    monkeypatch.setenv("KAMHTTP_TEST_URL", "api=>http://127.0.0.1/a b")
    monkeypatch.setenv("KAMHTTP_TEST_EMPTY", "")
    monkeypatch.delenv("KAMHTTP_TEST_UNSET", raising=False)
    assert statements("""\
        #!defenv KAMHTTP_TEST_TIMEOUT
        #!defenv T=KAMHTTP_TEST_TIMEOUT
        #!defenvs URL=KAMHTTP_TEST_URL
        #!defenvs EMPTY=KAMHTTP_TEST_EMPTY
        #!trydefenv KAMHTTP_TEST_UNSET
        #!trydefenvs U=KAMHTTP_TEST_UNSET
        modparam("http_client", "connection_timeout", KAMHTTP_TEST_TIMEOUT)
        modparam("http_client", "connection_timeout", T)
        modparam("http_client", "httpcon", URL)
        modparam("http_client", "useragent", EMPTY)
        #!ifdef KAMHTTP_TEST_UNSET
        modparam("http_client", "maxdatasize", 1)
        #!endif
        #!ifndef U
        modparam("http_client", "maxdatasize", 2)
        #!endif
        """) == [("connection_timeout", 7, "7"), ("connection_timeout", 7, "8"),
                 ("httpcon", "api=>http://127.0.0.1/a b", "9"), ("useragent", "", "10"),
                 ("maxdatasize", 2, "15")]


def test_directives_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("KAMHTTP_TEST_API", "127.0.0.1:8080")
    path = tmp_path / "kamailio.cfg"
    path.write_text('#!defenv API=KAMHTTP_TEST_API\n#!substdef "/API_HOST/127.0.0.1:8080/"\n'
                    '#!subst "/APIPATH/v1/"\n'
                    'modparam("http_client", "httpcon", "api=>http://API_HOST/APIPATH")\n')
    assert kamhttp.load_kamailio_cfg(path).connections["api"].url == "127.0.0.1:8080/v1"


@pytest.mark.parametrize("text, line, what", [
    ("#!defenv KAMHTTP_TEST_UNSET\n", 1, "environment variable KAMHTTP_TEST_UNSET is not set"),
    ("#!defenvs X=KAMHTTP_TEST_UNSET\n", 1, "is not set"),
    ("#!defenv X=\n", 1, "no variable after '='"),
    ("#!defenv\n", 1, "needs a name"),
    ('#!define H 1\n#!substdef "/H/2/"\n', 2, "H is already defined"),
    ("#!define KAMHTTP_TEST_SET 1\n#!defenv KAMHTTP_TEST_SET\n", 2, "already defined"),
    ("#!defexp T 1 + 2\n", 1, "#!defexp is not supported"),
    ('!!defexps S "a" + "b"\n', 1, "#!defexps is not supported"),
    ('#!subst 5\n', 1, "invalid #!subst preprocess statement"),
    ('#!subst "/a"\n', 1, "too short"),
    ('#!subst "/a/"\n', 1, "too short after the regular expression"),
    ('#!subst "\\\\a\\\\b\\\\"\n', 1, "separator"),
    ('#!subst "/a/b"\n', 1, "no separator after the replacement"),
    ('#!subst "/a/b/x"\n', 1, "unknown flag 'x'"),
    ('#!subst "/a(/b/"\n', 1, "'(' without ')'"),
    ('#!subst "/\\\\w+/x/"\n', 1, "GNU operator"),
    ('#!subst "/a**/x/"\n', 1, "repetition of a repetition"),
    ('#!subst "/[[=a=]]/x/"\n', 1, "[= =]"),
    ('#!subst "/a$b/x/s"\n', 1, "with the s flag"),
    ('#!subst "/(a|b)c/\\\\1/"\n', 1, "\\1 to \\9 with |"),
    ('#!subst "/a/$var(x)/"\n', 1, "pseudo-variables"),
    ('#!subst "/a/\\\\u/"\n', 1, "\\u (the request URI)"),
    ('#!substdef "/A/\\\\$x/"\n', 1, "pseudo-variables"),
    ('#!subst "/x*/y/"\nmodparam("http_client", "useragent", "x")\n'
     'modparam("http_client", "useragent", "a")', 2, "matches an empty string"),
    ('#!subst "/R/' + "X" * 1023 + '/"\nmodparam("http_client", "useragent", "R")', 2,
     "replacement of 1023 bytes"),
])
def test_directive_errors_name_the_line(text, line, what, monkeypatch):
    monkeypatch.setenv("KAMHTTP_TEST_SET", "1")
    monkeypatch.delenv("KAMHTTP_TEST_UNSET", raising=False)
    (err,) = errors(text)
    assert what in err.message and err.source == f"k.cfg:{line}" and err.valid
    assert err.text is not None or "needs a name" in what


def test_largest_replacement_kamailio_builds():
    """1022 bytes fit Kamailio's buffer [verified 5.6.3: 1022 replaced, 1023 'Buffer too
    small']."""
    assert values('#!subst "/R/' + "X" * 1022 + '/"\nmodparam("http_client", "useragent", "aRb")'
                  ) == ["a" + "X" * 1022 + "b"]


def test_a_refused_directive_loads_nothing(tmp_path):
    path = tmp_path / "kamailio.cfg"
    path.write_text('#!subst "/\\\\d+/1/"\nmodparam("http_client", "httpcon", "a=>http://h")\n')
    with pytest.raises(ConfigError) as info:
        kamhttp.load_kamailio_cfg(path)
    assert info.value.source == f"{path}:1" and "GNU operator" in info.value.message
    assert kamhttp.http_connection_exists("a") == 0


# --- the regex engine: as glibc's, which Kamailio uses, in the C locale (no setlocale) --------

REG_EXTENDED, REG_ICASE, REG_NEWLINE, REG_NOTBOL = 1, 2, 4, 1


class _RegMatch(ctypes.Structure):
    _fields_ = [("so", ctypes.c_int), ("eo", ctypes.c_int)]       # glibc's regoff_t


@pytest.fixture(scope="module")
def glibc():
    """This host's glibc, whose regcomp/regexec Kamailio uses."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("needs glibc's regex engine, which Kamailio uses on this host")
    return ctypes.CDLL(ctypes.util.find_library("c"))


def kamailio_subst(libc, regex: bytes, flags: str, replacement: list, data: bytes
                   ) -> bytes | None:
    """What Kamailio makes of ``data`` (subst_str), None where it logs an error and leaves
    it unchanged: written from its documented behaviour, matching with glibc."""
    compiled = ctypes.create_string_buffer(1024)                  # > sizeof(regex_t)
    cflags = REG_EXTENDED | REG_ICASE * ("i" in flags) | REG_NEWLINE * ("s" not in flags)
    previous = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")                        # Kamailio's locale
    assert libc.regcomp(compiled, regex, cflags) == 0, regex
    try:
        out, pos, eflags = b"", 0, 0
        while True:
            match = (_RegMatch * 10)()
            if libc.regexec(compiled, data[pos:], 10, match, eflags) != 0:
                break
            if match[0].so == match[0].eo:
                return None
            out += data[pos:pos + match[0].so] + b"".join(
                part if isinstance(part, bytes) else
                data[pos + match[part].so:pos + match[part].eo] if match[part].so >= 0 else b""
                for part in replacement)
            pos += match[0].eo
            eflags = 0 if data[pos - 1:pos] in (b"\n", b"\r") else REG_NOTBOL
            if "g" not in flags:
                break
        return out + data[pos:]
    finally:
        libc.regfree(compiled)
        locale.setlocale(locale.LC_CTYPE, previous)


ATOMS = ["a", "b", ".", "[ab]", "[^a]", "[a-c]", "\\.", "(a)", "(ab)", "(a|b)", "(a*)", "^",
         "$", "A", "\n", "\r", "[[:upper:]]", "[^[:lower:]]", "(a|ab)", "(b|)", "]", "}",
         "[]a]", "-", "[a-]", "é", "[é]", "\\(", "\\|", "[[:digit:][:space:]]", "x{0}",
         "[^\n]"]
REPLACEMENTS = [("x", b"x"), ("\\0", 0), ("\\1", 1), ("\\2", 2), ("\\n", b"\n"),
                ("\\\\", b"\\"), ("\\/", b"/")]


@settings(max_examples=400, deadline=None, derandomize=True)
@given(pieces=st.lists(st.tuples(st.sampled_from(ATOMS),
                                 st.sampled_from(["", "", "*", "+", "?", "{2}", "{0,2}"])),
                       min_size=1, max_size=4),
       alternative=st.none() | st.sampled_from(ATOMS),
       replacement=st.lists(st.sampled_from(REPLACEMENTS), max_size=3),
       flags=st.sets(st.sampled_from("igs")),
       value=st.text(alphabet="aabbAB.\n\r-]}cé 1(|", max_size=8))
def test_subst_matches_as_glibc_does(glibc, pieces, alternative, replacement, flags, value):
    """Any rule kamhttp accepts gives what Kamailio gives; the others are refused."""
    regex = "".join(atom + quantifier for atom, quantifier in pieces)
    regex += "" if alternative is None else "|" + alternative
    text = f"/{regex}/{''.join(r for r, _ in replacement)}/{''.join(sorted(flags))}"
    try:
        rule = SubstRule(text, "k.cfg:1", "subst")
    except ParseError as err:                          # refused, naming the rule
        assert err.where == "k.cfg:1" and err.valid
        return
    want = kamailio_subst(glibc, regex.encode(), "".join(flags),
                          [part for _, part in replacement], value.encode())
    try:
        got: bytes | None = rule.apply(value, "k.cfg:2").encode()
    except ParseError as err:                          # an empty match, or a cut UTF-8 character
        assert err.where == "k.cfg:2"
        got = None
    if want is not None and not _is_utf8(want):
        want = None
    assert got == want


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
