"""A relay between a client and a real MongoDB-wire server that records
every command the client sends.

It forwards bytes both ways unchanged and decodes each client message on
the way: an OP_MSG's body (section kind 0) with its document sequences
(kind 1, how drivers send an insert's documents) folded back in under their
identifier, as the server reads it. Tests use it to check what Aurora asks
of the store, e.g. that every query on the messages collection names the
shard key. Other opcodes (a driver's legacy OP_QUERY handshake) are
forwarded and not recorded."""

from __future__ import annotations

import socket
import struct
import threading

import bson

OP_MSG = 2013
CHECKSUM_PRESENT = 1


def decode_op_msg(payload: bytes) -> dict:
    """The command of one OP_MSG (header removed): body + sequences."""
    (flags,) = struct.unpack_from("<I", payload, 0)
    end = len(payload) - (4 if flags & CHECKSUM_PRESENT else 0)
    pos, body, sequences = 4, None, {}
    while pos < end:
        kind = payload[pos]
        pos += 1
        if kind == 0:
            (n,) = struct.unpack_from("<i", payload, pos)
            body = bson.decode(payload[pos:pos + n])
            pos += n
        elif kind == 1:
            (size,) = struct.unpack_from("<i", payload, pos)
            stop = pos + size
            name_end = payload.index(b"\0", pos + 4)
            name = payload[pos + 4:name_end].decode()
            docs, p = [], name_end + 1
            while p < stop:
                (n,) = struct.unpack_from("<i", payload, p)
                docs.append(bson.decode(payload[p:p + n]))
                p += n
            sequences[name] = docs
            pos = stop
        else:
            raise ValueError(f"OP_MSG section kind {kind}")
    if body is None:
        raise ValueError("OP_MSG without a body")
    body.update(sequences)
    return body


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class MongoWireTap:
    """with MongoWireTap(host, port) as tap: clients connect to tap.url(db);
    tap.commands() is what they sent, in order."""

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._commands: list[dict] = []
        self._errors: list[str] = []
        self._socks: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database: str) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{database}"

    def commands(self) -> list[dict]:
        with self._lock:
            if self._errors:
                raise AssertionError(f"the tap could not decode what the client sent: {self._errors[:3]}")
            return list(self._commands)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    server.close()
                    return
                self._socks += [client, server]
            threading.Thread(target=self._client_to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while True:
                header = _read_exact(client, 16)
                if header is None:
                    break
                length, _, _, opcode = struct.unpack("<iiii", header)
                rest = _read_exact(client, length - 16)
                if rest is None:
                    break
                if opcode == OP_MSG:
                    try:
                        cmd = decode_op_msg(rest)
                    except (ValueError, struct.error, bson.errors.BSONError) as e:
                        with self._lock:
                            self._errors.append(repr(e))
                    else:
                        with self._lock:
                            self._commands.append(cmd)
                server.sendall(header + rest)
        except OSError:
            pass
        finally:
            self._shut(client, server)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            self._shut(src, dst)

    @staticmethod
    def _shut(*socks: socket.socket) -> None:
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            socks, self._socks = self._socks, []
        self._listener.close()
        for s in socks:
            self._shut(s)
            s.close()

    def __enter__(self) -> "MongoWireTap":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
