"""Smoke runs of the benchmarks in bench/: each script still runs end to end with tiny counts
and prints its tables. Their numbers are not checked (a busy CI machine proves nothing about
speed); the calls behind them are: every benchmark verifies the HTTP status it gets."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def _nginx_missing() -> str | None:
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        return None
    return "nginx is not installed (apt-get install nginx-light): the benchmarks' HTTP server"


def run_bench(script: str, *args: str, timeout: float = 120) -> str:
    reason = _nginx_missing()
    if reason:
        print(f"SKIPPED bench/{script}: {reason}")
        pytest.skip(reason)
    proc = subprocess.run([sys.executable, str(BENCH / script), "--smoke", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"bench/{script} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_inprocess_smoke():
    out = run_bench("inprocess.py")
    for section in ("### HTTP, keep-alive server", "### HTTPS (TLS 1.3"):
        assert section in out
    for client in ("pycurl reused handle", "kamhttp cfg http_connect kc=1",
                   "kamhttp KEMI curl_connect kc=1", "kamhttp cfg http_client_query kc=1",
                   "kamhttp KEMI query kc=1", "kamhttp KEMI query kc=0",
                   "pycurl new handle per call"):
        assert f"| {client} " in out, f"no row for {client}:\n{out}"
    assert "Targets (HTTP):" in out


def test_memory_smoke():
    out = run_bench("memory.py")
    assert "2,000 calls after" in out
    assert out.count("HTTP 200, 4096 bytes kept") == 4, out


def test_sip_smoke():
    sys.path.insert(0, str(ROOT))
    from tests.kamailio.kamharness import unavailable_reason

    reason = unavailable_reason("http_client") or (
        None if shutil.which("sipp") else "SIPp is not installed (apt-get install sip-tester)")
    if reason:
        print(f"SKIPPED bench/sip.py: {reason}")
        pytest.skip(reason)
    out = run_bench("sip.py", timeout=180)
    for variant in ("no HTTP (native cfg)", "bare pycurl", "C http_connect kc=1",
                    "kamhttp curl_connect kc=1", "kamhttp query kc=1"):
        assert f"| {variant} " in out, f"no row for {variant}:\n{out}"
    assert "failed SIP calls: 0" in out, out


def test_async_sip_smoke():
    sys.path.insert(0, str(ROOT))
    from tests.kamailio.kamharness import unavailable_reason

    reason = unavailable_reason("http_client", "tm", "tmx", "evrexec") or (
        None if shutil.which("sipp") else "SIPp is not installed (apt-get install sip-tester)")
    if reason is None and not Path("/usr/lib/nginx/modules/ngx_http_echo_module.so").exists():
        reason = "nginx's echo module is missing (apt-get install libnginx-mod-http-echo)"
    if reason:
        print(f"SKIPPED bench/async_sip.py: {reason}")
        pytest.skip(reason)
    out = run_bench("async_sip.py", timeout=120)
    for variant in ("C http_client sync", "kamhttp sync", "kamhttp async, 1 HTTP process",
                    "kamhttp async, 2 HTTP processes"):
        assert f"| {variant} " in out, f"no row for {variant}:\n{out}"
    assert "### in flight:" in out, out
    assert "failed SIP calls: 0" in out, out
