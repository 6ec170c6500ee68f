"""
L{ServerExHandler}: an C{EthernetServerInterfaceEx} that drops idle clients and keeps trying to
listen.

The interface accepts clients through its own L{ClientsFactory}; the handler wraps that factory in
an L{IdleClientsFactory} (L{EthernetServerInterfaceEx.listenThrough}), whose per-client
L{IdleClientProtocol} adds the idle policy and forwards everything else.  Idle means no data
I{from} the client: what the server writes to it does not count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IAddress, IProtocol, IReactorTime
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, TimeoutMixin, WrappingFactory
from twisted.python.failure import Failure

from twisted_ch import _checks
from twisted_ch._connection import Connecting, Connection, Dropping, State, Up, Waiting
from twisted_ch._events import Event, emit
from twisted_ch._handlers import FallThrough
from twisted_ch._link import CLOSE_GRACE
from twisted_ch._retry import RetryPolicy
from twisted_ch._runtime import Runtime, resolveRuntime
from twisted_ch._stats import ServerStats
from twisted_ch.extronlib._servers import (
    ClientObject,
    EthernetServerInterfaceEx,
    ServerClientProtocol,
    checkListenTimeout,
)

__all__ = ["IdleClientProtocol", "IdleClientsFactory", "ServerExHandler"]


class IdleClientProtocol(TimeoutMixin, ProtocolWrapper):
    """
    Wraps one client's protocol and closes the connection (gracefully: a FIN, as the
    reference's C{Disconnect()}) once the client has sent nothing for the factory's
    C{idleTimeout} seconds.  A client that stopped reading would keep a graceful close waiting
    for its full buffer forever: it is aborted if the close has not completed within
    L{CLOSE_GRACE} seconds.
    """

    _grace: Any = None

    factory: IdleClientsFactory

    def __init__(self, factory: IdleClientsFactory, wrappedProtocol: IProtocol) -> None:
        ProtocolWrapper.__init__(self, factory, wrappedProtocol)
        self.callLater = factory.clock.callLater  # type: ignore[method-assign,assignment]

    def connectionMade(self) -> None:
        TimeoutMixin.setTimeout(self, self.factory.idleTimeout)

    def dataReceived(self, data: bytes) -> None:
        TimeoutMixin.resetTimeout(self)
        ProtocolWrapper.dataReceived(self, data)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        TimeoutMixin.setTimeout(self, None)
        if self._grace is not None and self._grace.active():
            self._grace.cancel()
        self._grace = None
        ProtocolWrapper.connectionLost(self, reason)

    def timeoutConnection(self) -> None:
        self.factory.clientTimedOut(self)
        transport: Any = self.transport
        transport.loseConnection()
        abort = getattr(transport, "abortConnection", None)
        if abort is not None and self._grace is None:
            self._grace = self.factory.clock.callLater(CLOSE_GRACE, abort)


class IdleClientsFactory(WrappingFactory[IdleClientProtocol]):
    """
    Wraps a server interface's factory: each client it accepts gets an L{IdleClientProtocol}.
    Clients the wrapped factory refuses stay refused.
    """

    protocol = IdleClientProtocol
    noisy = False

    def __init__(
        self,
        wrappedFactory: Any,
        idleTimeout: float,
        clock: IReactorTime,
        onIdle: Callable[[ClientObject | None], None],
    ) -> None:
        super().__init__(wrappedFactory)  # type: ignore[no-untyped-call]
        self.idleTimeout = idleTimeout
        self.clock = clock
        self._onIdle = onIdle

    def buildProtocol(self, addr: IAddress | None) -> IdleClientProtocol | None:  # type: ignore[override]
        inner = self.wrappedFactory.buildProtocol(addr)
        if inner is None:
            return None
        return IdleClientProtocol(self, inner)

    def clientTimedOut(self, protocol: IdleClientProtocol) -> None:
        """C{protocol}'s client was idle too long (it is being dropped)."""
        inner = protocol.wrappedProtocol
        self._onIdle(inner.client if isinstance(inner, ServerClientProtocol) else None)


class ServerExHandler(FallThrough):
    """
    Wraps an L{EthernetServerInterfaceEx} (use L{GetConnectionHandler}): clients idle for
    C{clientIdleTimeout} seconds are disconnected, and a failed L{StartListen} is reported through
    L{ListenFailed} and retried every C{listenRetryTime} seconds until the port listens.

    Attributes it does not define are read from the wrapped interface.
    """

    log = Logger()

    Connected = Event["ServerExHandler"]("Called as C{(client, 'Connected')}.")
    Disconnected = Event["ServerExHandler"]("Called as C{(client, 'Disconnected')}.")
    ReceiveData = Event["ServerExHandler"]("Called as C{(client, data)}.")
    ListenFailed = Event["ServerExHandler"]("Called as C{(handler, reason)} per failed attempt.")

    def __init__(
        self,
        Interface: Any,
        clientIdleTimeout: float,
        listenRetryTime: float,
        *,
        reactor: Any = None,
    ) -> None:
        if not isinstance(Interface, EthernetServerInterfaceEx):
            raise TypeError(
                "ServerExHandler wraps an EthernetServerInterfaceEx, "
                f"not {type(Interface).__name__}"
            )
        if Interface.Protocol != "TCP":
            raise TypeError("ServerExHandler needs a TCP EthernetServerInterfaceEx")
        # the bounds of the config's serverTimeout and connectRetryTime (issue 11)
        self._idleTimeout = _checks.period(clientIdleTimeout, "clientIdleTimeout")
        self._retryTime = _checks.period(listenRetryTime, "listenRetryTime")
        ifaceRuntime = getattr(Interface, "_rt", None)
        self._rt: Runtime = (
            ifaceRuntime
            if reactor is None and isinstance(ifaceRuntime, Runtime)
            else resolveRuntime(reactor)
        )
        self._WrappedInterface: EthernetServerInterfaceEx = Interface
        self.factory = IdleClientsFactory(
            Interface.factory, self._idleTimeout, self._rt.reactor, self._clientIdle
        )
        Interface.listenThrough(self.factory)
        Interface.observers.append(self)
        #: listening's lifecycle, as a link's: a listen attempt is Connecting, a port Up, a
        #: failure Waiting for its retry; its timeout is the listening window
        self._connection = Connection(self._rt.reactor, self, CLOSE_GRACE)
        self._connection.retrier.interval = self._retryTime
        self._connection.reconnecting = True
        #: StartListen()s waiting for the current attempt's result
        self._listenWaiters: list[Deferred[str]] = []
        self.droppedIdle = 0
        self.listenFailures = 0
        self.lastFailure: str | None = None

    # documented properties

    @property
    def Interface(self) -> EthernetServerInterfaceEx:
        """The wrapped interface."""
        return self._WrappedInterface

    @property
    def Clients(self) -> list[ClientObject]:
        """The connected clients."""
        return self._WrappedInterface.Clients

    @property
    def clientIdleTimeout(self) -> float:
        """Seconds a client may send nothing before it is disconnected."""
        return self._idleTimeout

    @property
    def listenRetryTime(self) -> float:
        """Seconds between attempts to listen after a failure."""
        return self._retryTime

    # listening

    def StartListen(self, timeout: float = 0) -> Any:
        """
        Listen, for C{timeout} seconds if given (0: until L{StopListen}).  Returns the first
        attempt's result ('Listening', 'ListeningAlready' or the failure reason; a Deferred of it
        on the reactor); after a failure, L{ListenFailed} fires and the handler retries every
        C{listenRetryTime} seconds until listening or L{StopListen}.
        """
        seconds = checkListenTimeout(timeout)
        return self._rt.twoFaced(self._startListen, seconds)

    def _startListen(self, timeout: float) -> Deferred[str]:
        connection = self._connection
        connection.keep(timeout)  # the window; a pending retry is cancelled
        state = connection.state
        if isinstance(state, Up):  # (its window restarts)
            return self._WrappedInterface.startListening(timeout)
        if isinstance(state, Dropping):  # listens once the port is closed
            d: Deferred[str] = Deferred()
            self._listenWaiters.append(d)
            return d
        return self._attempt()

    def _attempt(self) -> Deferred[str]:
        d: Deferred[str] = Deferred()
        self._listenWaiters.append(d)
        if not isinstance(self._connection.state, Connecting):
            self._connection.connect(self._connection.timeout)
        return d

    # the lifecycle's owner (L{twisted_ch._connection.ConnectionOwner})

    def connectionAttempt(self, window: float | None) -> None:
        """The lifecycle's attempt: listen (its result comes back as an input)."""
        # the lifecycle holds a handle: a StopListen cancels it, the interface's own attempt
        # then ends 'Cancelled'
        handle: Deferred[None] = Deferred(lambda d: None)
        handle.addErrback(lambda f: f.trap(CancelledError))
        self._connection.attempting(handle)
        self._WrappedInterface.startListening(window or 0.0).addCallback(self._attempted, handle)

    def _attempted(self, result: str, handle: Deferred[None]) -> None:
        waiters, self._listenWaiters = self._listenWaiters, []
        try:
            if "Listening" in result:
                self._connection.made(self._WrappedInterface)
            elif result != "Cancelled" and self._connection.failed(handle, result):
                self._failed(result)  # (else a StopListen came first)
        finally:
            for d in waiters:
                d.callback(result)

    def _failed(self, result: str) -> None:
        self.listenFailures += 1
        self.lastFailure = result
        when = self._connection.nextAttempt
        delay = when - self._rt.reactor.seconds() if when is not None else self._retryTime
        self.log.warn(
            "{handler}: cannot listen ({reason}: {detail}); retrying in {delay} s",
            handler=self,
            reason=result,
            detail=self._WrappedInterface.lastError,
            delay=round(delay, 3),
        )
        emit(self._rt, self, "ListenFailed", self, result)

    @property
    def retryPolicy(self) -> RetryPolicy:
        """How long to wait before each listen attempt after a failure (see L{RetryPolicy})."""
        return self._connection.retrier.policy

    @retryPolicy.setter
    def retryPolicy(self, policy: RetryPolicy) -> None:
        self._connection.retrier.policy = policy

    @property
    def wanted(self) -> bool:
        """Whether listening is wanted: from C{StartListen()} to C{StopListen()}."""
        return self._connection.wanted

    def connectionRetry(self) -> None:
        if not self._WrappedInterface.listening:
            self._attempt()

    def connectionAbort(self, port: object) -> None:
        pass  # (closing a port aborts its idle clients itself)

    def connectionEntered(self, state: State) -> None:
        pass

    def StopListen(self) -> Any:
        """
        Stop listening and retrying (connected clients stay, still subject to the idle timeout);
        on the reactor, a Deferred of the port closing.
        """
        return self._rt.twoFaced(self._stopListen)

    def _stopListen(self) -> Deferred[None]:
        if isinstance(self._connection.state, Dropping):  # a StartListen waits for the close
            waiters, self._listenWaiters = self._listenWaiters, []
            for d in waiters:
                d.callback("Cancelled")
        done = self._connection.stop()  # listening: the port closes (L{connectionClose})
        return done if done is not None else self._WrappedInterface.stopListening()

    def connectionClose(self, server: object) -> None:
        def closed(_: None) -> None:
            closes, again = self._connection.lost(None)
            for d in closes:
                d.callback(None)
            if again and isinstance(self._connection.state, Waiting):  # a StartListen meanwhile
                self._connection.connect(self._connection.timeout)

        self._WrappedInterface.stopListening().addCallback(closed)

    # interface observer (reactor thread)

    def clientConnected(self, client: ClientObject) -> None:
        emit(self._rt, self, "Connected", client, "Connected")

    def clientLost(self, client: ClientObject, reason: str) -> None:
        emit(self._rt, self, "Disconnected", client, "Disconnected")

    def clientData(self, client: ClientObject, data: bytes) -> None:
        emit(self._rt, self, "ReceiveData", client, data)

    def _clientIdle(self, client: ClientObject | None) -> None:
        self.droppedIdle += 1
        self.log.info(
            "{handler}: {client} sent nothing for {timeout} s; dropping it",
            handler=self,
            client=client,
            timeout=self._idleTimeout,
        )

    def stats(self) -> ServerStats:
        """Counters for operators."""
        iface = self._WrappedInterface
        return ServerStats(
            listening=iface.listening,
            port=iface.IPPort,
            clients=len(iface.Clients),
            droppedIdle=self.droppedIdle,
            refused=iface.refused,
            listenFailures=self.listenFailures,
            lastFailure=self.lastFailure,
        )

    def __repr__(self) -> str:
        return f"<ServerExHandler {self._WrappedInterface!r}>"
