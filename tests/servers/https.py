"""The HTTPS flavours of the HTTP server: good certificate, wrong host, untrusted CA, client
certificate required. Each knows the files a client needs to talk to it."""
from __future__ import annotations

from .http1 import HttpServer
from .tls import TlsFiles, server_context


class HttpsServer(HttpServer):
    """The App over TLS, reached as https://localhost:PORT (the certificate's name)."""

    def __init__(self, files: TlsFiles, cert_file: str, key_file: str, *,
                 require_client_cert: bool = False, h2: bool = False,
                 host: str = "127.0.0.1", url_name: str = "localhost") -> None:
        context = server_context(cert_file, key_file,
                                 client_ca_file=files.ca_file if require_client_cert else None,
                                 alpn=("h2", "http/1.1") if h2 else ("http/1.1",))
        super().__init__(host, url_name=url_name, tls=context)
        self.tls_files = files
        self.ca_file = files.ca_file
        self.client_cert = files.client_cert
        self.client_key = files.client_key
        self.wrong_host: HttpsServer | None = None
        """A companion serving a certificate only valid for "other.example", when started
        by start_https_server; reached as `wrong_host_url`."""

    @property
    def wrong_host_url(self) -> str | None:
        return self.wrong_host.url if self.wrong_host else None

    def stop(self) -> None:
        if self.wrong_host:
            self.wrong_host.stop()
        super().stop()
