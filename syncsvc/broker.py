"""kombu's Redis transport, with one fix: a worker survives its Redis going away while it
waits for a message (a Redis restart, a failover).

A kombu Redis channel that is closed while its BRPOP is in flight first reads that BRPOP's
answer, so that no message is popped and then dropped. With the server gone, that read raises
and the close stops halfway: the channel stays open. Celery, handling the lost connection,
detaches the connection and then closes the same channel again; that second close restores
the unacknowledged messages through a connection that is no longer there and fails with an
AttributeError ("'NoneType' object has no attribute 'hostname'"), which Celery treats as
unrecoverable: the worker exits. Here a connection error on that read means the broker took
its answer with it, and the close goes on; and a channel closed after its connection was
detached restores nothing through it. What the worker had not acknowledged stays in
Redis's unacked set (restored after the visibility timeout) or went with a restarted Redis;
either way the database still holds the work (DESIGN.md decision 1).
"""
from __future__ import annotations

from queue import Empty

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def close(self):
        if not self.closed:
            if self._in_poll:
                try:
                    self._brpop_read()
                except Empty:
                    pass
                except self.connection_errors:
                    pass  # the broker went away mid-poll (`_brpop_read` left the poll state cleared)
            if self.connection.client is None and self._qos is not None:
                # Closed again after its connection was detached: nothing can be restored
                # through it (kombu would build a client from a connection that is gone).
                self._qos.restore_at_shutdown = False
        super().close()


class Transport(kombu_redis.Transport):
    Channel = Channel
