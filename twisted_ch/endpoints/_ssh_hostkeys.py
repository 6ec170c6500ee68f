"""
Non-interactive host key checking against an OpenSSH known_hosts file.

A host is identified by the name it is connected to, written as OpenSSH writes it: C{host} for
port 22, C{[host]:port} otherwise (host names lower-cased).  The address a name resolves to is
neither checked nor recorded (as with OpenSSH's default C{CheckHostIP no}): a device known under
its name that moved to a new IP address is accepted without a prompt and without writing the file.

Policies:
  - C{"reject"}: only keys already in the file are accepted; the file is never written.
  - C{"accept-new"}: trust on first use; a host with no entry at all gets the offered key added
    (hashed, as C{ssh-keygen -H} would) and the file saved.
A host that has entries, none of which matches the offered key (a different key, or only keys of
other types), is refused with L{HostKeyChanged} under either policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from twisted.conch.client.knownhosts import KnownHostsFile
from twisted.conch.ssh.keys import Key
from twisted.logger import Logger

from ._ssh_errors import HostKeyChanged, HostKeyError, UnknownHostKey, fingerprint

__all__ = ["HOST_KEY_POLICIES", "HostKeyPolicy", "HostKeyVerifier", "knownHostsName"]

HostKeyPolicy = Literal["reject", "accept-new"]
HOST_KEY_POLICIES: tuple[str, ...] = get_args(HostKeyPolicy)

_RSA_ALGORITHMS = [b"rsa-sha2-512", b"rsa-sha2-256", b"ssh-rsa"]


def knownHostsName(host: str, port: int) -> str:
    """The name under which OpenSSH records C{host}:C{port} in known_hosts."""
    name = host.lower()
    return name if port == 22 else f"[{name}]:{port}"


def _entryKey(entry: object) -> Key | None:
    key = getattr(entry, "publicKey", None)
    return key if isinstance(key, Key) else None


class HostKeyVerifier:
    """Decides, without prompting, whether a server's host key is acceptable."""

    log = Logger()

    def __init__(self, knownHosts: KnownHostsFile, policy: HostKeyPolicy) -> None:
        if policy not in HOST_KEY_POLICIES:
            raise ValueError(f"hostKeyPolicy must be one of {HOST_KEY_POLICIES}, not {policy!r}")
        self.knownHosts = knownHosts
        self.policy: HostKeyPolicy = policy

    @property
    def path(self) -> str:
        """The known_hosts file's path."""
        return self.knownHosts.savePath.path

    def _recorded(self, name: str) -> list[Key]:
        encoded = name.encode("utf-8")
        keys: list[Key] = []
        for entry in self.knownHosts.iterentries():
            key = _entryKey(entry)
            if key is not None and entry.matchesHost(encoded):
                keys.append(key)
        return keys

    def _lineNumbers(self, name: str) -> dict[bytes, int]:
        """Line numbers of the saved entries for C{name}, by key blob (for messages)."""
        encoded = name.encode("utf-8")
        saved = KnownHostsFile.fromPath(self.knownHosts.savePath)
        lines: dict[bytes, int] = {}
        for number, entry in enumerate(saved.iterentries(), 1):
            key = _entryKey(entry)
            if key is not None and entry.matchesHost(encoded):
                lines.setdefault(key.blob(), number)
        return lines

    def preferredAlgorithms(self, host: str, port: int, supported: Iterable[bytes]) -> list[bytes]:
        """C{supported} host key algorithms, those of the keys recorded for the host first."""
        supported = list(supported)
        known: list[bytes] = []
        for key in self._recorded(knownHostsName(host, port)):
            sshType = key.sshType()
            for algorithm in _RSA_ALGORITHMS if sshType == b"ssh-rsa" else [sshType]:
                if algorithm in supported and algorithm not in known:
                    known.append(algorithm)
        return known + [a for a in supported if a not in known]

    def verify(self, host: str, port: int, key: Key) -> None:
        """
        Accept C{key} for C{host}:C{port} or raise a L{HostKeyError}.

        @raise UnknownHostKey: no entry for the host and the policy is C{"reject"}.
        @raise HostKeyChanged: the host has entries but none for this key.
        """
        name = knownHostsName(host, port)
        recorded = self._recorded(name)
        if any(known.public() == key.public() for known in recorded):
            return
        if recorded:
            lines = self._lineNumbers(name)
            raise HostKeyChanged(
                host, port, key, [(k, lines.get(k.blob())) for k in recorded], self.path
            )
        if self.policy == "reject":
            raise UnknownHostKey(host, port, key, self.path)
        self.knownHosts.addHostKey(name.encode("utf-8"), key)
        try:
            self.knownHosts.save()
        except OSError as e:
            raise HostKeyError(
                f"could not record the new host key for {host} port {port} in {self.path}: {e}"
            ) from e
        self.log.info(
            "trusted new host key {fingerprint} for {name} (saved to {path})",
            fingerprint=fingerprint(key),
            name=name,
            path=self.path,
        )
