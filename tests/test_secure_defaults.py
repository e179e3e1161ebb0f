"""Secure defaults (issue 7), each with a test:

1. TLS verification is on unless switched off (verify_peer 1, verify_host 2: spec 2.2).
2. Passwords never appear in logs, listcon, check output, exception texts or reprs, and are
   not sent to another host on a redirect.
3. Only http and https, for requests and for redirects (spec 1: curl error 1).
4. Memory is bounded by maxdatasize / query_maxdatasize (interface page, 6.4).
5. Nothing from a response is evaluated: bodies, headers and redirect URLs are data.
"""
from __future__ import annotations

import json
import logging
import pathlib
import subprocess
import sys
import tracemalloc

import pytest

import kamhttp
from kamhttp import ConfigError, config, pv
from kamhttp.config.params import Settings
from kamhttp.testing import Emulator
from tests import servers
from tests.servers import bytes_body

PASSWORD = "S3cr3t-pw-7f3a"
ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def clean(monkeypatch, caplog):
    """Defaults, the fallback PV store, every kamhttp log record captured."""
    monkeypatch.delitem(sys.modules, "KSR", raising=False)
    caplog.set_level(logging.DEBUG, logger="kamhttp")
    kamhttp.reset()
    pv.clear_fallback()
    kamhttp.modparam("query_result", 0)
    yield kamhttp.modparam
    kamhttp.reset()
    pv.clear_fallback()


def logged(caplog) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


# --- 1. TLS verification on by default -------------------------------------------------------

def test_verification_defaults():
    settings = Settings()
    assert (settings.verify_peer, settings.verify_host) == (1, 2)


def test_unknown_ca_is_refused_by_default(clean, https_server):
    """No cacert: the test CA is not in the system store, so curl 60 (spec 5.1)."""
    clean("httpcon", f"api=>{https_server.url}")
    assert kamhttp.http_client_query(f"{https_server.url}/code/200?body=x", "$var(r)") == 60
    assert kamhttp.http_connect("api", "/code/200?body=x", "$var(r)") == 60
    assert kamhttp.http_client_request_v2pk("GET", f"{https_server.url}/", "", "", "$var(r)") \
        == 60
    assert pv.get("$var(r)") == ""


def test_with_the_ca_it_works_and_bad_certificates_still_fail(clean, https_server,
                                                              https_untrusted_server):
    clean("cacert", https_server.ca_file)
    clean("httpcon", f"api=>{https_server.url}")
    clean("httpcon", f"other=>{https_untrusted_server.url}")
    clean("httpcon", f"wrong=>{https_server.wrong_host_url}")
    assert kamhttp.http_connect("api", "/code/200?body=x", "$var(r)") == 200
    assert kamhttp.http_connect("other", "/code/200?body=x", "$var(r)") == 60
    assert kamhttp.http_connect("wrong", "/code/200?body=x", "$var(r)") == 60
    assert kamhttp.http_client_query(f"{https_untrusted_server.url}/", "$var(r)") == 60
    assert kamhttp.http_client_query(f"{https_server.wrong_host_url}/", "$var(r)") == 60


def test_loaded_connections_verify_by_default(clean, tmp_path, https_untrusted_server):
    """YAML and config_file connections take the verifying defaults too."""
    (tmp_path / "c.cfg").write_text(f"[filecon]\nurl = {https_untrusted_server.url}\n")
    (tmp_path / "k.yaml").write_text(
        f"modparams:\n  - config_file: {tmp_path / 'c.cfg'}\n"
        f"connections:\n  yamlcon:\n    url: {https_untrusted_server.url}\n")
    kamhttp.load_config(tmp_path / "k.yaml")
    for name in ("filecon", "yamlcon"):
        assert kamhttp.http_connect(name, "/", "$var(r)") == 60, name


def test_switching_verification_off_is_explicit(clean, https_untrusted_server):
    """The 60 above is verification: switched off (both switches), the same server answers."""
    clean("verify_peer", 0)
    clean("verify_host", 0)
    clean("httpcon", f"insecure=>{https_untrusted_server.url}")
    assert kamhttp.http_connect("insecure", "/code/200?body=x", "$var(r)") == 200
    assert kamhttp.http_client_query(f"{https_untrusted_server.url}/code/200?body=x",
                                     "$var(r)") == 200


# --- 2. passwords ---------------------------------------------------------------------------------

def test_password_not_in_request_logs(clean, caplog, http_server, fault_server):
    """Successful, refused, failed-over and direct requests with credentials, at debug level
    (the test server's /auth/basic takes servers.USER / servers.PASSWORD)."""
    user, password = servers.USER, servers.PASSWORD
    clean("httpcon", f"api=>http://{user}:{password}@{http_server.url[7:]}")
    clean("httpcon", f"dead=>http://{user}:{password}@{fault_server.refused_url[7:]};"
                     "failover=api")
    assert kamhttp.http_connect("api", "/auth/basic", "$var(r)") == 200
    assert pv.get("$var(r)") == f"authenticated {user}"
    assert kamhttp.http_connect("dead", "/auth/basic", "$var(r)") == 200
    assert kamhttp.http_connect("api", "/no-such-page", "$var(r)") == 404
    assert kamhttp.http_client_query(
        f"http://{user}:{password}@{fault_server.refused_url[7:]}/x", "$var(r)") == 7
    assert kamhttp.http_client_query(
        f"http://{user}:{password}@{fault_server.url[7:]}/fault/close", "$var(r)") == 52
    text = logged(caplog)
    assert "Could not connect" in text and "Server returned nothing" in text
    assert password not in text


def test_password_not_in_listcon_or_repr(clean):
    clean("httpcon", f"api=>http://alice:{PASSWORD}@127.0.0.1:1/x")
    current = config.current()
    from kamhttp.ops.listcon import listcon_json
    listing = json.loads(listcon_json(current))
    assert listing["CONNECTION"][0]["USERNAME"] == "alice"
    assert listing["CONNECTION"][0]["PASSWORD"] == "********"
    assert PASSWORD not in listcon_json(current)
    assert PASSWORD not in repr(current.connections["api"])
    assert PASSWORD not in repr(current)
    assert PASSWORD not in str(current.connections["api"].masked())


def _good_files(tmp: pathlib.Path) -> list[pathlib.Path]:
    (tmp / "good.yaml").write_text(
        f"modparams:\n  - httpcon: 'a=>http://u:{PASSWORD}@127.0.0.1:1/x'\n"
        f"connections:\n  b:\n    url: http://v:{PASSWORD}@127.0.0.1:1/x\n"
        f"  c:\n    url: http://127.0.0.1:1/x\n    username: w\n    password: {PASSWORD}\n")
    (tmp / "good.cfg").write_text(
        f"[c]\nurl = http://127.0.0.1:1/x\nusername = w\npassword = {PASSWORD}\n")
    (tmp / "kamailio.cfg").write_text(
        'loadmodule "http_client.so"\n'
        f'modparam("http_client", "httpcon", "a=>http://u:{PASSWORD}@127.0.0.1:1/x")\n')
    return [tmp / "good.yaml", tmp / "good.cfg", tmp / "kamailio.cfg"]


@pytest.mark.parametrize("command", ["check", "listcon"])
def test_password_not_in_check_or_listcon_output(tmp_path, command):
    for path in _good_files(tmp_path):
        done = subprocess.run([sys.executable, "-m", "kamhttp", command, str(path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "********" in done.stdout
        assert PASSWORD not in done.stdout + done.stderr


BAD_CONFIGS = {
    # httpcon syntax errors on a line that holds a password
    "httpcon-junk": ("httpcon", f"a=>http://u:{PASSWORD}@h;timeout=5 x"),
    "httpcon-no-slashes": ("httpcon", f"a=>http:/u:{PASSWORD}@h"),
    "httpcon-no-scheme": ("httpcon", f"a=>u:{PASSWORD}@h"),
    "httpcon-bad-value": ("httpcon", f"a=>http://u:{PASSWORD}@h;timeout=abc"),
    # config_file errors on the password's line or in a URL with credentials
    "file-missing-equals": ("file", f"[a]\nurl = http://h/x\npassword {PASSWORD}\n"),
    "file-bad-escape": ("file", f'[a]\nurl = http://h/x\npassword = "{PASSWORD}\\q"\n'),
    "file-url-without-scheme": ("file", f"[a]\nurl = u:{PASSWORD}@h/x\n"),
    "file-url-one-slash": ("file", f"[a]\nurl = http:/u:{PASSWORD}@h/x\n"),
    # YAML
    "yaml-url-without-scheme": ("yaml", f"connections:\n  a:\n    url: u:{PASSWORD}@h/x\n"),
    "yaml-httpcon": ("yaml", f"modparams:\n  - httpcon: 'a=>http:/u:{PASSWORD}@h'\n"),
    "yaml-password-list": ("yaml", f"connections:\n  a:\n    url: http://h/x\n"
                                   f"    password: [{PASSWORD}]\n"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_password_not_in_configuration_errors(clean, tmp_path, case):
    """The error names the place and the fault; the password stays out of its text, out of
    every collected error, and out of what `check` prints."""
    kind, text = BAD_CONFIGS[case]
    if kind == "httpcon":
        path = tmp_path / "kamailio.cfg"
        path.write_text(f'modparam("http_client", "httpcon", "{text}")\n')
        load = lambda: kamhttp.modparam("httpcon", text)  # noqa: E731
    else:
        path = tmp_path / ("bad.cfg" if kind == "file" else "bad.yaml")
        path.write_text(text)
        load = (lambda: kamhttp.modparam("config_file", str(path))) if kind == "file" \
            else (lambda: kamhttp.load_config(path))
    with pytest.raises(ConfigError) as raised:
        load()
    assert PASSWORD not in str(raised.value)
    assert all(PASSWORD not in str(error) for error in raised.value.errors)
    assert all(PASSWORD not in (error.text or "") for error in raised.value.errors)
    done = subprocess.run([sys.executable, "-m", "kamhttp", "check", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert PASSWORD not in done.stdout + done.stderr


def test_credentials_not_sent_to_another_host_on_redirect(clean, http_server, h2c_server):
    """A redirect to another origin does not carry the connection's credentials (libcurl's
    default, kept: kamhttp never sets CURLOPT_UNRESTRICTED_AUTH)."""
    clean("authmethod", 1)                                  # Basic, sent pre-emptively
    clean("httpcon", f"api=>http://alice:{PASSWORD}@{http_server.url[7:]}")
    http_server.clear()
    h2c_server.clear()
    assert kamhttp.http_connect("api", f"/redirect/302?to={h2c_server.url}/echo",
                                "$var(r)") == 200
    (first,) = http_server.requests
    assert first.header("Authorization", "").startswith("Basic ")
    (second,) = h2c_server.requests
    assert second.header("Authorization") is None
    assert PASSWORD not in json.dumps(json.loads(pv.get("$var(r)")))


# --- 3. only http and https --------------------------------------------------------------------

OTHER_SCHEMES = ["file:///etc/passwd", "FILE:///etc/passwd", "file://localhost/etc/passwd",
                 "ftp://127.0.0.1:1/x", "dict://127.0.0.1:1/x", "gopher://127.0.0.1:1/",
                 "ldap://127.0.0.1:1/", "scp://127.0.0.1:1/x", "smb://127.0.0.1:1/x",
                 "telnet://127.0.0.1:1", "tftp://127.0.0.1:1/x", "ws://127.0.0.1:1/x",
                 "ftp.example.invalid/x"]   # libcurl guesses ftp:// from the host name


@pytest.mark.parametrize("url", OTHER_SCHEMES)
def test_only_http_and_https_urls(clean, url):
    pv.sets("$var(r)", "stale")
    assert kamhttp.http_client_query(url, "$var(r)") == 1
    assert pv.get("$var(r)") == ""
    assert kamhttp.http_client.query(url, "$var(r)") == 1
    assert kamhttp.http_client_request_v2pk("GET", url, "", "", "$var(r)") == 1
    scheme, sep, rest = url.partition("://")
    if sep:
        clean("httpcon", f"other=>{scheme}://{rest}")
        assert kamhttp.http_connect("other", "", "$var(r)") == 1
        assert pv.get("$var(r)") == ""
    assert kamhttp.request("GET", url).curl_code == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1:1/x",
                                    "dict://127.0.0.1:1/x"])
def test_only_http_and_https_redirects(clean, http_server, h2c_server, status, target):
    clean("httpcon", f"api=>{http_server.url}")
    path = f"/redirect/{status}?to={target}"
    assert kamhttp.http_connect("api", path, "$var(r)") == 1
    assert kamhttp.http_client_query(http_server.url + path, "$var(r)") == 1
    assert kamhttp.http_client_request_v2pk("GET", h2c_server.url + path, "", "",
                                            "$var(r)") == 1
    assert pv.get("$var(r)") == ""
    result = kamhttp.request("GET", http_server.url + path)
    assert result.curl_code == 1 and b"root:" not in result.body


# --- 4. memory bounded by maxdatasize ------------------------------------------------------

CAP = 4096


@pytest.mark.parametrize("family", ["connection", "direct", "request"])
def test_maxdatasize_bounds_memory(clean, fault_server, family):
    """A 100 MiB answer costs at most a few chunks of Python memory with a cap, and the
    result is exactly the cap (spec 6.4, interface: no more of the body is kept)."""
    clean("maxdatasize", CAP)
    clean("query_maxdatasize", CAP)
    clean("httpcon", f"big=>{fault_server.url}")
    url = f"{fault_server.url}/fault/huge?mb=100"
    tracemalloc.start()
    try:
        if family == "connection":
            rc, body = kamhttp.http_connect("big", "/fault/huge?mb=100", "$var(r)"), None
        elif family == "direct":
            rc, body = kamhttp.http_client_query(url, "$var(r)"), None
        else:
            result = kamhttp.request("GET", url)
            rc, body = result.status, result.body
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rc == 200
    expected = bytes_body(CAP)
    assert (body if body is not None else pv.get("$var(r)").encode()) == expected
    assert peak < 4 << 20, f"{peak} bytes of Python memory for a capped 100 MiB body"


def test_response_header_capture_is_bounded(clean, fault_server):
    """Capturing headers of a 1 MiB header block: libcurl stops at its 300 KiB limit
    (curl 56); what was captured stays within that limit and the line that crossed it."""
    clean("response_headers", 1)
    assert kamhttp.http_client_query(f"{fault_server.url}/fault/huge-headers?kb=1024",
                                     "$var(r)") == 56
    from kamhttp.core.state import peek
    assert sum(len(line) for line in peek().header_lines) < 320 * 1024


# --- 5. nothing from a response is evaluated ------------------------------------------------------

HOSTILE = ('$var(secret) $(var(secret)) $$ $shv(x) ${var(secret)} %s %(x)s {0} '
           '__import__("os").system("touch /tmp/kamhttp-evaluated") `id`')


@pytest.fixture
def emulated(monkeypatch):
    """Results written through an emulated KSR.pv, as inside Kamailio."""
    emulator = Emulator()
    monkeypatch.setitem(sys.modules, "KSR", emulator.module)
    return emulator.module


def test_response_body_is_stored_as_written(clean, emulated, http_server):
    import urllib.parse
    emulated.pv.sets("$var(secret)", "TOP-SECRET")
    clean("httpcon", f"api=>{http_server.url}")
    quoted = urllib.parse.quote(HOSTILE)
    assert kamhttp.http_connect("api", f"/code/200?body={quoted}", "$var(r)") == 200
    assert emulated.pv.get("$var(r)") == HOSTILE
    assert kamhttp.http_client.query(f"{http_server.url}/code/404?body={quoted}",
                                     "$var(r)") == 404
    assert emulated.pv.get("$var(r)") == HOSTILE
    assert emulated.pv.get("$var(secret)") == "TOP-SECRET"
    assert not pathlib.Path("/tmp/kamhttp-evaluated").exists()


def test_headers_and_redirect_urls_are_data(clean, emulated, http_server):
    import urllib.parse
    emulated.pv.sets("$var(secret)", "TOP-SECRET")
    clean("response_headers", 1)
    clean("httpcon", f"api=>{http_server.url}")
    header = urllib.parse.quote("X-Hostile: $var(secret) %s {0}")
    assert kamhttp.http_connect("api", f"/code/200?hdr={header}", "$var(r)") == 200
    assert kamhttp.pv.get("$httprhdr(X-Hostile)") == "$var(secret) %s {0}"
    target = urllib.parse.quote("/echo?v=$var(secret)", safe="")
    assert kamhttp.http_connect("api", f"/redirect/302?to={target}", "$var(r)") == 200
    assert kamhttp.http_get_redirect("api", "$var(u)") == 1
    assert emulated.pv.get("$var(u)") == f"{http_server.url}/echo?v=$var(secret)"
    assert kamhttp.pv.get("$curlredirect") == f"{http_server.url}/echo?v=$var(secret)"
    assert json.loads(emulated.pv.get("$var(r)"))["query"] == "v=$var(secret)"


def test_a_result_reused_in_a_cfg_argument_is_expanded_once(clean, emulated, http_server):
    """pv_printf semantics: a PV's value is inserted, never parsed again, so a hostile
    answer stored in $var(route) cannot pull $var(secret) into the next request."""
    emulated.pv.sets("$var(secret)", "TOP-SECRET")
    clean("httpcon", f"api=>{http_server.url}")
    assert kamhttp.http_connect("api", "/code/200?body=%24var(secret)", "$var(route)") == 200
    assert emulated.pv.get("$var(route)") == "$var(secret)"
    assert kamhttp.http_connect("api", "/echo?r=$var(route)", "text/plain", "d=$var(route)",
                                "$var(r)") == 200
    document = json.loads(emulated.pv.get("$var(r)"))
    assert document["query"] == "r=$var(secret)"
    assert document["body"] == "d=$var(secret)"
    assert "TOP-SECRET" not in emulated.pv.get("$var(r)")
