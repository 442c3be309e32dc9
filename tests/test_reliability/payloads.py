"""Malicious weight files for the safe-loading tests, and a local server.

Every payload has a visible effect when it runs: it creates a marker file.
A test passes only when the loader refuses the file *and* the marker does
not exist. URLs are served from 127.0.0.1 by a thread of the test process;
nothing leaves the machine.
"""
import contextlib
import functools
import http.server
import os
import socket
import threading
import warnings
from typing import Iterator, Tuple

import torch


class WritesAFile:
    """Unpickling this runs ``touch <path>`` (a plain pickle payload)."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f'touch {self.path}', ))


def save_pickle_payload(path, marker, zipfile: bool = True) -> str:
    """A ``torch.save``-d checkpoint whose ``meta`` runs the payload."""
    torch.save(
        dict(state_dict={'w': torch.ones(1)}, meta=WritesAFile(marker)),
        str(path),
        _use_new_zipfile_serialization=zipfile)
    return str(path)


class _SetstatePayload(torch.nn.Module):
    """A scripted module whose ``__setstate__`` creates a file when the
    archive is loaded with ``torch.jit.load``."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2, 2))
        self.path = marker

    def forward(self, x):
        return x @ self.w

    @torch.jit.export
    def __getstate__(self):
        return (self.w, self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, str, bool]):
        # torch.from_file(..., shared=True) creates the file
        touched = torch.from_file(state[1], True, 4)
        self.w = state[0] + touched.view(2, 2) * 0
        self.path = state[1]
        self.training = state[2]


class _Holder(torch.nn.Module):
    """An innocent-looking model carrying the payload as a submodule."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(2, 2)
        self.evil = _SetstatePayload(marker)

    def forward(self, x):
        return self.evil(self.proj(x))


def save_torchscript_payload(path, marker) -> str:
    """A TorchScript archive whose loading with ``torch.jit.load`` creates
    ``marker`` (a scripted ``__setstate__``)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        torch.jit.save(torch.jit.script(_Holder(str(marker))), str(path))
    return str(path)


@contextlib.contextmanager
def serve_folder(folder, timeout: float = 20.0) -> Iterator[str]:
    """Serve ``folder`` over http on 127.0.0.1; yields the base URL.

    The server runs in a daemon thread and every socket of the test process
    times out after ``timeout`` seconds, so a hung transfer fails the test
    instead of stalling the suite.
    """

    class Quiet(http.server.SimpleHTTPRequestHandler):

        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    server.timeout = timeout
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        socket.setdefaulttimeout(old)
        server.shutdown()
        server.server_close()
        thread.join(timeout)
