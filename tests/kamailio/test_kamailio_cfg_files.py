"""The committed kamailio-cfg/ files work as they are: started from the clone (-w), with only
the SIP port moved off 5060, each runs its default script; the C module and kamhttp read the
same connections from kamailio-c.cfg, and http_client.yaml holds the same ones."""
from __future__ import annotations

import json
import subprocess
import sys

from .kamharness import KAMAILIO_CFG_DIR, ROOT, SipClient


def listcon(path) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "kamhttp", "listcon", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["CONNECTION"]


def test_kamailio_cfg_runs_its_default_example(start_kamailio):
    """kamailio.cfg runs kemi_examples/routing_lookup.py, which answers OPTIONS itself."""
    kamailio = start_kamailio(script=None, working_dir=ROOT)
    with SipClient(kamailio.sip_port) as sip:
        reply = sip.send(sip.build("OPTIONS"))
    assert (reply.status, reply.reason) == (200, "Keepalive")
    assert kamailio.python_errors() == []


def test_side_by_side_cfg_loads_the_c_module_and_its_config_file(start_kamailio):
    kamailio = start_kamailio(cfg=KAMAILIO_CFG_DIR / "kamailio-c.cfg", script=None,
                              working_dir=ROOT, modules=("http_client",), ready="rpc")
    c_listed = [member for _, member in kamailio.rpc("httpclient.listcon")]
    assert [c["NAME"] for c in c_listed] == ["api_backup", "api", "lnp"]
    assert listcon(KAMAILIO_CFG_DIR / "kamailio-c.cfg") == c_listed


def test_yaml_defines_the_same_connections_as_the_cfg():
    assert listcon(KAMAILIO_CFG_DIR / "http_client.yaml") == \
        listcon(KAMAILIO_CFG_DIR / "kamailio-c.cfg")


def test_kamhttp_check_accepts_every_committed_file():
    for name in ("kamailio.cfg", "kamailio-c.cfg", "http_client.yaml", "http_client.cfg"):
        done = subprocess.run([sys.executable, "-m", "kamhttp", "check",
                               str(KAMAILIO_CFG_DIR / name)], capture_output=True, text=True,
                              cwd=ROOT, timeout=60)
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
