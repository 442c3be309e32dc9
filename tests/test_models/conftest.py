"""Fixtures of the model tests."""
import socket
from typing import Any, List, Tuple

import pytest


@pytest.fixture
def refused_network(monkeypatch) -> List[Tuple[Any, Any]]:
    """Stand in for a machine without network, deterministically.

    Every TCP connection (``socket.create_connection``) and every name
    lookup (``socket.getaddrinfo``, which requests/urllib3 use) is refused
    at once and recorded as ``(address, timeout)``, so a test can check
    *which* network access a code path makes (none when offline, one
    bounded probe otherwise) instead of timing it.
    """
    calls: List[Tuple[Any, Any]] = []

    def create_connection(address, timeout=None, *args, **kwargs):
        calls.append((tuple(address), timeout))
        raise ConnectionRefusedError(f'test: no network ({address})')

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append(((host, port), None))
        raise socket.gaierror(f'test: no name resolution ({host})')

    monkeypatch.setattr(socket, 'create_connection', create_connection)
    monkeypatch.setattr(socket, 'getaddrinfo', getaddrinfo)
    return calls
