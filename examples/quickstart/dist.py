"""A tiny collective-communication layer over TCP: all-reduce and barrier for data parallelism.

It reads the distributed environment that mlctl (like torchrun and Kubernetes Indexed Jobs) gives
every worker: ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE`` and ``RANK``. Rank 0 listens on
``MASTER_ADDR:MASTER_PORT``; every other rank connects to it, retrying until a deadline because
workers start in any order. An all-reduce sends each array to rank 0, which adds them up in rank
order and sends the same bytes back to everyone, so every rank gets a bit-identical result.

Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) there is nothing to connect to and every
collective returns its input: the same script runs alone or as one of N workers.

Wire format: every message is a 20-byte header (magic, kind, dtype, sequence number, payload
length) followed by the array's raw little-endian bytes. Nothing is unpickled; a header that does
not match what this rank expects (another kind of call, another shape, a stranger on the port) is
an error that names the peer. A peer that exits closes its socket, so the others fail at once;
a peer that hangs makes the others fail after ``timeout`` seconds.

    import dist
    dist.init()
    grad = dist.all_reduce_mean(grad)
    dist.close()
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import struct
import time

import numpy as np

__all__ = [
    "DistError",
    "init",
    "rank",
    "world_size",
    "all_reduce_sum",
    "all_reduce_mean",
    "barrier",
    "check_identical",
    "close",
]

_HEADER = struct.Struct("<4sBBxxIQ")  # magic, kind, dtype code, (pad), sequence, payload bytes
_MAGIC = b"MLD1"
_HELLO, _WELCOME, _REDUCE, _BARRIER = 1, 2, 3, 4
_KIND_NAMES = {_HELLO: "hello", _WELCOME: "welcome", _REDUCE: "all_reduce", _BARRIER: "barrier"}
_DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i8")}
_DTYPE_CODES = {dtype: code for code, dtype in _DTYPES.items()}


class DistError(RuntimeError):
    """A collective could not complete: bad environment, rendezvous timeout, or a peer failed."""


class _Group:
    """The connections of one process: rank 0 holds one socket per peer, the others one socket."""

    def __init__(self, rank: int, world_size: int, timeout: float):
        self.rank = rank
        self.world_size = world_size
        self.timeout = timeout
        self.peers: dict[int, socket.socket] = {}  # peer rank -> socket (rank 0: all, others: {0})
        self.seq = 0

    # --- framing -------------------------------------------------------------------------

    def send(self, sock: socket.socket, who: str, kind: int, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        header = _HEADER.pack(_MAGIC, kind, _DTYPE_CODES[data.dtype], self.seq, data.nbytes)
        try:
            sock.sendall(header + data.tobytes())
        except TimeoutError:
            raise DistError(f"timed out after {self.timeout:g}s sending to {who}") from None
        except OSError as e:
            raise DistError(f"lost the connection to {who} ({e}); did it exit?") from None

    def recv(self, sock: socket.socket, who: str, kind: int, like: np.ndarray) -> np.ndarray:
        """Receive one message that must be `kind` with `like`'s dtype and size."""
        header = self._recv_exactly(sock, who, _HEADER.size)
        magic, got_kind, code, seq, nbytes = _HEADER.unpack(header)
        if magic != _MAGIC:
            raise DistError(f"{who} sent bytes that are not a dist.py message")
        if got_kind != kind:
            raise DistError(
                f"{who} called {_KIND_NAMES.get(got_kind, got_kind)}() while rank {self.rank} "
                f"called {_KIND_NAMES[kind]}(); every rank must make the same calls"
            )
        dtype = _DTYPES.get(code)
        if seq != self.seq or dtype != like.dtype.newbyteorder("<") or nbytes != like.nbytes:
            raise DistError(
                f"{who} sent call #{seq} with {nbytes} bytes of {dtype}, rank {self.rank} "
                f"expected call #{self.seq} with {like.nbytes} bytes of {like.dtype}; every rank "
                "must pass arrays of the same shape and dtype in the same order"
            )
        payload = self._recv_exactly(sock, who, nbytes)
        return np.frombuffer(payload, dtype=dtype).reshape(like.shape)

    def _recv_exactly(self, sock: socket.socket, who: str, n: int) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                k = sock.recv_into(view[got:])
            except TimeoutError:
                raise DistError(
                    f"timed out after {self.timeout:g}s waiting for {who}; is it hung?"
                ) from None
            except OSError as e:
                raise DistError(f"lost the connection to {who} ({e}); did it exit?") from None
            if k == 0:
                raise DistError(f"{who} closed the connection; did it exit or fail?")
            got += k
        return buf

    # --- collectives ---------------------------------------------------------------------

    def reduce(self, kind: int, array: np.ndarray, mean: bool) -> np.ndarray:
        """Rank 0 sums in rank order and sends the sum back: every rank gets the same bytes."""
        self.seq = (self.seq + 1) % 2**32  # it travels as a 32-bit field
        if self.rank == 0:
            total = array.copy()
            for peer in range(1, self.world_size):
                total += self.recv(self.peers[peer], f"rank {peer}", kind, array)
            if mean:
                total = (total / self.world_size).astype(array.dtype)
            for peer in range(1, self.world_size):
                self.send(self.peers[peer], f"rank {peer}", kind, total)
            return total
        self.send(self.peers[0], "rank 0", kind, array)
        return self.recv(self.peers[0], "rank 0", kind, array)

    def close(self) -> None:
        for sock in self.peers.values():
            sock.close()
        self.peers.clear()


_group: _Group | None = None


def _env_int(env: dict[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise DistError(f"{name}={env[name]!r} is not an integer") from None


def _listen(master_addr: str, port: int) -> socket.socket:
    """Rank 0 listens on MASTER_ADDR when it is a loopback address (a run on one machine), else on
    all interfaces: in a cluster MASTER_ADDR names rank 0's pod, whose DNS record may not exist yet.
    """
    try:
        loopback = master_addr == "localhost" or ipaddress.ip_address(master_addr).is_loopback
    except ValueError:  # a host name
        loopback = False
    if loopback:
        family = socket.AF_INET6 if ":" in master_addr else socket.AF_INET
        return socket.create_server((master_addr, port), family=family)
    if socket.has_dualstack_ipv6():
        return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
    return socket.create_server(("", port))


def init(timeout: float = 60.0, env: dict[str, str] | None = None) -> None:
    """Join the group described by the environment; returns when all WORLD_SIZE ranks are connected.

    `timeout` bounds the rendezvous and, afterwards, every single send or receive.
    """
    global _group
    if _group is not None:
        raise DistError("dist.init() was already called")
    env = dict(os.environ if env is None else env)
    if "WORLD_SIZE" not in env or env["WORLD_SIZE"] == "1":
        _group = _Group(0, 1, timeout)
        return
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT", "RANK") if name not in env]
    if missing:
        raise DistError(f"WORLD_SIZE is set but {', '.join(missing)} is not")
    world, rank, port = (_env_int(env, n) for n in ("WORLD_SIZE", "RANK", "MASTER_PORT"))
    if world < 1 or not 0 <= rank < world:
        raise DistError(f"RANK={rank} must be in [0, WORLD_SIZE={world})")
    if not 0 < port < 65536:
        raise DistError(f"MASTER_PORT={port} is not a TCP port")
    group = _Group(rank, world, timeout)
    deadline = time.monotonic() + timeout
    try:
        if rank == 0:
            _accept_peers(group, env["MASTER_ADDR"], port, deadline)
        else:
            _connect_to_master(group, env["MASTER_ADDR"], port, deadline)
    except BaseException:
        group.close()
        raise
    _group = group


def _accept_peers(group: _Group, addr: str, port: int, deadline: float) -> None:
    try:
        listener = _listen(addr, port)
    except OSError as e:
        raise DistError(f"cannot listen on {addr}:{port} ({e})") from None
    hello = np.zeros(2, dtype=np.int64)
    with listener:
        while len(group.peers) < group.world_size - 1:
            listener.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                missing = sorted(set(range(1, group.world_size)) - set(group.peers))
                raise DistError(
                    f"rendezvous timed out after {group.timeout:g}s: ranks {missing} never "
                    f"connected to {addr}:{port}"
                ) from None
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                peer_rank, peer_world = (
                    int(v) for v in group.recv(sock, "a worker", _HELLO, hello)
                )
            except DistError:
                sock.close()
                raise
            if peer_world != group.world_size:
                sock.close()
                raise DistError(
                    f"rank {peer_rank} says WORLD_SIZE={peer_world}, rank 0 has {group.world_size}"
                )
            if not 0 < peer_rank < group.world_size or peer_rank in group.peers:
                sock.close()
                raise DistError(f"a second worker or an invalid one claims rank {peer_rank}")
            group.peers[peer_rank] = sock
    for peer, sock in group.peers.items():
        sock.settimeout(group.timeout)
        group.send(sock, f"rank {peer}", _WELCOME, np.zeros(0))


def _connect_to_master(group: _Group, addr: str, port: int, deadline: float) -> None:
    delay = 0.05
    while True:
        try:
            remaining = max(deadline - time.monotonic(), 0.001)
            sock = socket.create_connection((addr, port), timeout=min(remaining, 5.0))
            break
        except OSError as e:  # refused, unreachable or not resolvable yet: rank 0 may start later
            if time.monotonic() + delay > deadline:
                raise DistError(
                    f"rendezvous timed out after {group.timeout:g}s: cannot connect to rank 0 "
                    f"at {addr}:{port} ({e})"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    group.peers[0] = sock
    group.send(sock, "rank 0", _HELLO, np.array([group.rank, group.world_size], dtype=np.int64))
    sock.settimeout(max(deadline - time.monotonic(), 0.001))  # the welcome waits for everyone
    group.recv(sock, "rank 0", _WELCOME, np.zeros(0))
    sock.settimeout(group.timeout)


def _current() -> _Group:
    if _group is None:
        raise DistError("call dist.init() first")
    return _group


def rank() -> int:
    """This process's rank, 0 when running alone."""
    return _current().rank


def world_size() -> int:
    """The number of processes in the group, 1 when running alone."""
    return _current().world_size


def all_reduce_sum(array: np.ndarray) -> np.ndarray:
    """The element-wise sum of `array` over all ranks (float32, float64 or int64)."""
    array = np.asarray(array)
    if array.dtype.newbyteorder("<") not in _DTYPE_CODES:
        raise TypeError(f"all_reduce supports float32, float64 and int64, not {array.dtype}")
    return _current().reduce(_REDUCE, array, mean=False)


def all_reduce_mean(array: np.ndarray) -> np.ndarray:
    """The element-wise mean of a float `array` over all ranks; identical bytes on every rank."""
    array = np.asarray(array)
    if array.dtype.kind != "f":
        raise TypeError(f"all_reduce_mean needs a float array, not {array.dtype}")
    return _current().reduce(_REDUCE, array, mean=True)


def barrier() -> None:
    """Return once every rank has called barrier()."""
    _current().reduce(_BARRIER, np.zeros(0), mean=False)


def check_identical(array: np.ndarray, what: str) -> None:
    """Raise DistError unless `array` has the same bytes on every rank.

    All-reduces the SHA-256 digest d as [sum d, sum d²]: W·Σd² − (Σd)² is W² times the variance
    over ranks, zero only when every rank has the same digest (exact: small integers in float64).
    """
    digest = np.frombuffer(hashlib.sha256(np.ascontiguousarray(array).tobytes()).digest(), np.uint8)
    d = digest.astype(np.float64)
    sums = all_reduce_sum(np.stack([d, d * d]))
    if np.any(world_size() * sums[1] - sums[0] ** 2 != 0):
        raise DistError(f"the ranks hold different {what}")


def close() -> None:
    """Close this rank's connections; init() may be called again afterwards."""
    global _group
    if _group is not None:
        _group.close()
        _group = None
