"""Certificates for the TLS servers, made with trustme and written to files, since kamhttp
(like libcurl) takes file names: the test CA, server certificates (good, wrong host, from an
untrusted CA) and a client certificate."""
from __future__ import annotations

import dataclasses
import pathlib
import ssl
import tempfile

import trustme

CLIENT_COMMON_NAME = "kamhttp test client"
WRONG_HOST = "other.example"


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """PEM files on disk (all paths are str). The CA in `ca_file` signed every certificate
    except `untrusted_cert`, which `untrusted_ca_file` signed."""

    directory: str
    ca_file: str
    server_cert: str
    """Server certificate for "localhost", 127.0.0.1 and ::1 (its chain)."""
    server_key: str
    wrong_host_cert: str
    """Server certificate valid only for "other.example"."""
    wrong_host_key: str
    untrusted_ca_file: str
    untrusted_cert: str
    """Server certificate for "localhost"/127.0.0.1/::1 from the untrusted CA."""
    untrusted_key: str
    client_cert: str
    """Client certificate (CN "kamhttp test client") signed by the test CA."""
    client_key: str
    client_combined: str
    """Client key and certificate in one PEM file."""
    client_subject: str
    """The client certificate's subject, RFC 4514, as the servers record it."""


def make_tls_files(directory: str | pathlib.Path | None = None) -> TlsFiles:
    """Create a test CA and its certificates as PEM files in `directory` (a new temporary
    directory if None; the caller removes it)."""
    where = pathlib.Path(directory or tempfile.mkdtemp(prefix="kamhttp-tls-"))
    where.mkdir(parents=True, exist_ok=True)
    ca, untrusted_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    wrong_host = ca.issue_cert(WRONG_HOST)
    untrusted = untrusted_ca.issue_cert("localhost", "127.0.0.1", "::1")
    client = ca.issue_cert("client.kamhttp.test", common_name=CLIENT_COMMON_NAME)

    def write(name: str, blob: trustme.Blob | bytes) -> str:
        path = where / name
        if isinstance(blob, bytes):
            path.write_bytes(blob)
        else:
            blob.write_to_path(str(path))
        return str(path)

    def chain(leaf: trustme.LeafCert) -> bytes:
        return b"".join(blob.bytes() for blob in leaf.cert_chain_pems)

    from cryptography import x509
    subject = x509.load_pem_x509_certificate(client.cert_chain_pems[0].bytes()).subject
    return TlsFiles(
        directory=str(where),
        ca_file=write("ca.pem", ca.cert_pem),
        server_cert=write("server.pem", chain(server)),
        server_key=write("server.key", server.private_key_pem),
        wrong_host_cert=write("wrong-host.pem", chain(wrong_host)),
        wrong_host_key=write("wrong-host.key", wrong_host.private_key_pem),
        untrusted_ca_file=write("untrusted-ca.pem", untrusted_ca.cert_pem),
        untrusted_cert=write("untrusted.pem", chain(untrusted)),
        untrusted_key=write("untrusted.key", untrusted.private_key_pem),
        client_cert=write("client.pem", chain(client)),
        client_key=write("client.key", client.private_key_pem),
        client_combined=write("client-combined.pem", client.private_key_and_cert_chain_pem),
        client_subject=subject.rfc4514_string(),
    )


def server_context(cert_file: str, key_file: str, *, client_ca_file: str | None = None,
                   alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """A server-side context; with `client_ca_file`, a client certificate is required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(list(alpn))
    if client_ca_file:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca_file)
    return context
