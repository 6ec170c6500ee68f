"""
Client endpoints for device transports that Twisted lacks.

Every endpoint here provides L{twisted.internet.interfaces.IStreamClientEndpoint}:
C{connect(factory)} returns a Deferred that fires with the protocol once the link is usable, and
the protocol sees a stream-like transport (C{write}, C{loseConnection}, C{getPeer}, C{getHost}) and
exactly one C{connectionLost}.  TCP uses Twisted's own endpoints.
"""
