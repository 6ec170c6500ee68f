"""ControlScript's C{SSLWrap} arguments as Twisted TLS (pyOpenSSL), for clients and servers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IHandshakeListener,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["CERT_REQS", "SSL_VERSIONS", "TLSSettings"]

CERT_REQS = ("CERT_NONE", "CERT_OPTIONAL", "CERT_REQUIRED")
#: ControlScript says 'TLSv2' for TLS 1.2; newer versions are negotiated when both sides can
SSL_VERSIONS = ("TLSv2", "TLSv1.2", "TLSv1.3")


def _pem(alias: str) -> bytes:
    """A certificate alias's file, bounded and read without blocking (L{readCertificate})."""
    from twisted_ch.extronlib._net import readCertificate

    return readCertificate(alias)[1]


@dataclass(frozen=True)
class TLSSettings:
    """What an SSLWrap call asked for (certificate aliases, verification, the least version)."""

    certificate: str | None
    cert_reqs: str
    ssl_version: str
    ca_certs: str | None

    @classmethod
    def make(
        cls, certificate: object, cert_reqs: object, ssl_version: object, ca_certs: object
    ) -> TLSSettings:
        """Validated settings (the certificate files are read when a connection starts)."""
        for value, what in ((certificate, "certificate"), (ca_certs, "ca_certs")):
            if value is not None and (not isinstance(value, str) or not value):
                raise TypeError(f"{what} must be a certificate alias or None, not {value!r}")
        if cert_reqs not in CERT_REQS:
            raise ValueError(f"cert_reqs must be one of {', '.join(CERT_REQS)}, got {cert_reqs!r}")
        if ssl_version not in SSL_VERSIONS:
            raise ValueError(
                f"ssl_version must be one of {', '.join(SSL_VERSIONS)}, got {ssl_version!r}"
            )
        assert isinstance(cert_reqs, str) and isinstance(ssl_version, str)
        return cls(certificate, cert_reqs, ssl_version, ca_certs)  # type: ignore[arg-type]

    @property
    def verify(self) -> bool:
        """Whether the peer's certificate is verified."""
        return self.cert_reqs != "CERT_NONE"

    def _least(self) -> Any:
        from twisted.internet.ssl import TLSVersion

        return TLSVersion.TLSv1_3 if self.ssl_version == "TLSv1.3" else TLSVersion.TLSv1_2

    def _trust(self) -> Any:
        from twisted.internet.ssl import Certificate, platformTrust, trustRootFromCertificates

        if self.ca_certs is None:
            return platformTrust()
        return trustRootFromCertificates([Certificate.loadPEM(_pem(self.ca_certs))])

    def _own(self) -> Any:
        from twisted.internet.ssl import PrivateCertificate

        return (
            None if self.certificate is None else PrivateCertificate.loadPEM(_pem(self.certificate))
        )

    def clientEndpoint(
        self, hostname: str, endpoint: IStreamClientEndpoint
    ) -> IStreamClientEndpoint:
        """C{endpoint} with TLS on top, verifying C{hostname} if asked to."""
        from twisted.internet.endpoints import wrapClientTLS
        from twisted.internet.ssl import CertificateOptions, optionsForClientTLS

        own = self._own()
        creator: Any
        if self.verify:
            creator = optionsForClientTLS(
                hostname,
                trustRoot=self._trust(),
                clientCertificate=own,
                extraCertificateOptions={"raiseMinimumTo": self._least()},
            )
        else:
            creator = CertificateOptions(
                privateKey=own.privateKey.original if own is not None else None,
                certificate=own.original if own is not None else None,
                verify=False,
                raiseMinimumTo=self._least(),
            )
        return _HandshakenEndpoint(wrapClientTLS(creator, endpoint))

    def serverFactory(self, factory: IProtocolFactory) -> IProtocolFactory:
        """C{factory} behind TLS, presenting C{certificate} (required for a server)."""
        from twisted.internet.ssl import Certificate, CertificateOptions
        from twisted.protocols.tls import TLSMemoryBIOFactory

        own = self._own()
        if own is None:
            raise ValueError("a TLS server needs certificate= (its certificate and key)")
        cas = [] if self.ca_certs is None else [Certificate.loadPEM(_pem(self.ca_certs)).original]
        options = CertificateOptions(
            privateKey=own.privateKey.original,
            certificate=own.original,
            verify=self.verify,
            caCerts=cas if self.verify else None,
            requireCertificate=self.cert_reqs == "CERT_REQUIRED",
            raiseMinimumTo=self._least(),
        )
        return TLSMemoryBIOFactory(options, False, factory)


_DONE = Failure(ConnectionDone())


@implementer(IHandshakeListener)
class _AfterHandshake(ProtocolWrapper):
    """Connects its protocol only once the TLS handshake (and the verification) succeeded."""

    factory: _AfterHandshakeFactory

    def __init__(self, factory: _AfterHandshakeFactory, wrappedProtocol: IProtocol) -> None:
        super().__init__(factory, wrappedProtocol)
        self._handshaken = False

    def makeConnection(self, transport: Any) -> None:
        self.connected = 1
        self.transport = transport
        self.factory.protocolMade(self)

    def queuedBytes(self) -> int:
        """Bytes not yet taken by the device: the TCP transport's buffer under the TLS layer."""
        from twisted_ch.protocols.device import queuedBytes

        tls = self.transport
        return queuedBytes(tls) + queuedBytes(getattr(tls, "transport", None))

    def handshakeCompleted(self) -> None:
        self._handshaken = True
        ProtocolWrapper.makeConnection(self, self.transport)
        self.factory.handshaken(self.wrappedProtocol)

    def connectionLost(self, reason: Failure = _DONE) -> None:
        if self._handshaken:
            super().connectionLost(reason)  # type: ignore[no-untyped-call]
        else:
            self.connected = 0
            self.factory.failed(reason)


class _AfterHandshakeFactory(WrappingFactory[_AfterHandshake]):
    protocol = _AfterHandshake
    noisy = False

    def __init__(self, wrappedFactory: Any) -> None:
        super().__init__(wrappedFactory)  # type: ignore[no-untyped-call]
        self.wrapper: _AfterHandshake | None = None
        self.result: Deferred[Any] = Deferred(self._cancel)

    def protocolMade(self, wrapper: _AfterHandshake) -> None:
        self.wrapper = wrapper

    def handshaken(self, protocol: Any) -> None:
        if not self.result.called:
            self.result.callback(protocol)

    def failed(self, reason: Failure) -> None:
        if not self.result.called:
            self.result.errback(reason)

    def _cancel(self, _: Deferred[Any]) -> None:
        transport = getattr(self.wrapper, "transport", None)
        if transport is not None:
            transport.abortConnection()


@implementer(IStreamClientEndpoint)
class _HandshakenEndpoint:
    """
    A TLS client endpoint whose connect fires once the handshake succeeded, so that a server
    failing verification is a failed connect attempt, never a Connected device.
    """

    def __init__(self, tlsEndpoint: IStreamClientEndpoint) -> None:
        self._endpoint = tlsEndpoint

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        factory = _AfterHandshakeFactory(protocolFactory)
        tcp = self._endpoint.connect(factory)

        def tcpFailed(reason: Failure) -> None:
            factory.failed(reason)

        tcp.addErrback(tcpFailed)

        def cancelled(reason: Failure) -> Failure:
            if not tcp.called:
                tcp.cancel()
            return reason

        return factory.result.addErrback(cancelled)
