"""The README stays true: its parameter table is the generated one, and its two commands are
the ones CI and users run."""
from __future__ import annotations

import pathlib
import re
import subprocess

from kamhttp.config.params import PARAMS, documentation

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_params_table_is_generated_from_params():
    table = README.split("<!-- params-table -->\n", 1)[1].split("\n<!-- /params-table -->")[0]
    assert table.strip() == documentation().strip()


def test_every_documented_modparam_is_in_the_table():
    documented = {"httpredirect", "httpproxy", "httpproxyport", "useragent", "maxdatasize",
                  "connection_timeout", "timeout_mode", "client_cert", "client_key", "cacert",
                  "cipher_suites", "verify_peer", "verify_host", "tlsversion", "authmethod",
                  "keep_connections", "query_result", "query_maxdatasize", "httpcon",
                  "config_file", "netinterface", "response_headers"}
    additions = {"async_queue_size", "async_max_transfers", "async_max_per_connection",
                 "breaker_failures", "breaker_ratio", "breaker_window", "breaker_cooldown",
                 "max_connecting", "latency_metrics"}
    assert set(PARAMS) == documented | additions


def _fenced_after(marker: str) -> str:
    block = README.split(marker, 1)[1]
    return re.search(r"```sh\n(.*?)\n```", block, re.S).group(1)


def test_ci_runs_the_readme_test_command():
    script = ROOT / ".ci" / "run"
    extracted = subprocess.run(
        ["awk", '/<!-- test-command -->/{m=1; next} m && /^```/{if (f) exit; f=1; next} m && f',
         str(ROOT / "README.md")], capture_output=True, text=True, check=True).stdout.strip()
    assert extracted == _fenced_after("<!-- test-command -->")
    assert "<!-- test-command -->" in script.read_text()
    assert "pytest" in extracted


def test_demo_command_runs_the_demo():
    assert _fenced_after("<!-- demo-command -->").endswith("-m kamhttp demo")
