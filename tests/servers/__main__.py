"""Run every test server until stdin closes or SIGINT/SIGTERM, for manual runs, the demo and
Kamailio experiments: prints one JSON object with their URLs and the TLS files.

    .venv/bin/python -m tests.servers [--tls-dir DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading

from . import (make_tls_files, start_fault_server, start_h2c_server, start_http_server,
               start_https_client_cert_server, start_https_server,
               start_https_untrusted_server, start_proxy_server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.servers", description=__doc__)
    parser.add_argument("--tls-dir", help="where to write the test CA and certificates "
                        "(default: a new temporary directory)")
    args = parser.parse_args(argv)
    files = make_tls_files(args.tls_dir)
    https = start_https_server(files)
    fault = start_fault_server()
    running = [start_http_server(), https, start_https_untrusted_server(files),
               start_https_client_cert_server(files), start_h2c_server(), start_proxy_server(),
               fault]
    names = ["http", "https", "https_untrusted", "https_client_cert", "h2c", "proxy", "fault"]
    urls = {name: server.url for name, server in zip(names, running)}
    urls.update(https_wrong_host=https.wrong_host_url, refused=fault.refused_url)
    print(json.dumps({"urls": urls, "tls_files": dataclasses.asdict(files)}, indent=2),
          flush=True)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    for server in running:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
