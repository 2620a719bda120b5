"""TLS for a server that listens beyond this machine: a self-signed certificate kept across restarts,
and the client pinning its SHA-256 fingerprint (printed by the server) instead of trusting a CA.

The handshake is the standard library's (OpenSSL, TLS 1.3 only); the certificate is made with the
`cryptography` package. The client checks the fingerprint before it sends anything, the token
included; TLS itself proves that the server holds the certificate's private key.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from renderer.files import write_atomic

CERT_NAME = "server-cert.pem"
KEY_NAME = "server-key.pem"
VALID_DAYS = 3650


class TlsError(ValueError):
    """A TLS identity that cannot be used, or a server whose certificate is not the pinned one."""


@dataclass(frozen=True)
class TlsIdentity:
    cert_path: Path
    key_path: Path
    fingerprint: str                      # "SHA256:ab:cd:..." of the certificate (DER)


def default_tls_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stylegan-visualizer" / "serve-tls"


def fingerprint_of(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest()
    return "SHA256:" + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def normalized_fingerprint(text: str) -> str:
    """A fingerprint as the user pasted it (with or without "SHA256:" and colons) in canonical form."""
    hexdigits = text.strip().lower().replace(":", "").removeprefix("sha256")
    if len(hexdigits) != 64 or any(c not in "0123456789abcdef" for c in hexdigits):
        raise TlsError(f"{text[:100]!r} is not a SHA-256 fingerprint (64 hex digits, as `serve` prints it)")
    return "SHA256:" + ":".join(hexdigits[i:i + 2] for i in range(0, 64, 2))


def load_or_create_identity(directory: str | os.PathLike | None = None) -> TlsIdentity:
    """The server's certificate and key in `directory` (made there the first time)."""
    directory = Path(directory) if directory is not None else default_tls_dir()
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    if not cert_path.exists() or not key_path.exists():
        _create(cert_path, key_path)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as e:
        raise TlsError(f"Cannot read the TLS certificate {cert_path}: {e}; remove it to make a new one") from None
    return TlsIdentity(cert_path, key_path, fingerprint_of(cert.public_bytes(serialization.Encoding.DER)))


def _create(cert_path: Path, key_path: Path) -> None:
    directory = cert_path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stylegan-visualizer serve")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    write_atomic(key_path, key_pem, mode=0o600)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def server_context(identity: TlsIdentity) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_cert_chain(identity.cert_path, identity.key_path)
    except (OSError, ssl.SSLError) as e:
        raise TlsError(f"Cannot load the TLS certificate {identity.cert_path}: {e}") from None
    return context


def client_context() -> ssl.SSLContext:
    """No CA and no host name check: the certificate is checked against the pinned fingerprint."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def check_pinned(ssl_object: ssl.SSLObject | ssl.SSLSocket | None, pinned: str) -> None:
    """TlsError unless the peer's certificate has the fingerprint `pinned`."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise TlsError("The server presented no TLS certificate.")
    found = fingerprint_of(der)
    if not hmac.compare_digest(found, normalized_fingerprint(pinned)):
        raise TlsError(f"The server's TLS certificate is {found}, not the pinned {normalized_fingerprint(pinned)}: "
                       "this may not be your server. Check the fingerprint `serve` printed.")
