"""Whether the Hugging Face hub / a download host may and can be reached.

Shared by the CLIP towers (open_clip pretrained tags) and the BERT tower
(hub names): both check the offline switches first, then probe the host
with a short TCP connection before any download, so a machine without
network fails at once instead of hanging in name resolution.
"""
import os
import socket
import threading

__all__ = ['PROBE_TIMEOUT_S', 'hub_offline', 'host_reachable']

#: Seconds a connection probe waits (name resolution gets one more).
PROBE_TIMEOUT_S = 3.0


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is on."""
    # The variables huggingface_hub honours; read at call time because
    # huggingface_hub itself only reads them at import.
    return any(
        os.environ.get(k, '').upper() in ('1', 'ON', 'YES', 'TRUE')
        for k in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE'))


def host_reachable(host: str,
                   port: int = 443,
                   timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout``.

    Runs in a daemon thread because name resolution ignores socket
    timeouts and can block far longer on a machine without network.
    """
    result = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(result and result[0])
