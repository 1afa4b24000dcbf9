"""Client processes of a load run: the simulated users are spread over a few processes (one Python
process cannot drive thousands of sockets and measure them honestly), each reporting back over a
pipe. A child sends ("error", text) when it fails, so the parent raises instead of hanging."""
from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any


def shares(total: int, parts: int) -> list[int]:
    """`total` users as `parts` nearly equal shares (the first ones one larger)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def receive(pipe: Connection) -> Any:
    """The next report of a client process; RuntimeError if it says it failed."""
    kind, value = pipe.recv()
    if kind == "error":
        raise RuntimeError(f"client process failed: {value}")
    return value


def start_clients(target: Callable[..., None], args: Callable[[int, int], tuple[Any, ...]], total: int,
                  processes: int) -> tuple[list[Connection], list[BaseProcess], int]:
    """Spawn `processes` processes running target(*args(first, count), pipe) for their share of
    `total` users; wait for each one's first report (how many users it connected). Returns the
    parent ends of the pipes, the processes and how many users connected in all."""
    ctx = mp.get_context("spawn")
    pipes: list[Connection] = []
    procs: list[BaseProcess] = []
    first = connected = 0
    for share in shares(total, processes):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=target, args=(*args(first, share), child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
        first += share
    for pipe in pipes:
        connected += receive(pipe)
    return pipes, procs, connected
