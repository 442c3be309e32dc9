"""Helpers shared by the development scripts of ``.dev_scripts/``.

One copy of what ``benchmark.py``, ``bench_models.py``, ``bench_cuda.py``,
``bench_search.py`` and ``bench_rank_backends.py`` all report or feed: the
machine a run was measured on, and deterministic synthetic features.

The scripts import it as a sibling module (``import bench_common``, with
``.dev_scripts`` on ``sys.path``); torch is imported inside the functions,
because ``benchmark.py`` measures the memory of fresh worker processes
from their own imports on.
"""
import datetime
import os
import platform
from typing import Any, Dict, Optional

__all__ = ['FEAT_DIM', 'available_ram_gb', 'machine_info', 'make_features']

#: Width of the synthetic features (CLIP ViT-B/16's embedding).
FEAT_DIM = 512


def available_ram_gb() -> float:
    """MemAvailable from /proc/meminfo in GB (inf where unknown)."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return float('inf')


def _cpu_model() -> str:
    """The CPU model from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown'


def machine_info(device: Optional[str] = None) -> Dict[str, Any]:
    """What a benchmark figure was measured on.

    Args:
        device (str, optional): The torch device the run used; adds
            ``device`` and ``gpu`` and, on CUDA, the GPU's name and memory
            and the CUDA/cuDNN versions. Defaults to None (host only).

    Returns:
        dict: ``cpu``, ``cores``, ``torch``, ``torch_threads``, ``cuda``
        (whether a CUDA device is visible), ``available_ram_gb``,
        ``load_avg`` (1/5/15 min, None where unknown), ``python``, ``date``;
        with ``device`` also ``device`` and ``gpu`` (None on the CPU), and
        on CUDA ``gpu_memory_gib``, ``cuda_version`` and ``cudnn``.
    """
    import torch
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    info: Dict[str, Any] = dict(
        cpu=_cpu_model(),
        cores=os.cpu_count(),
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        cuda=torch.cuda.is_available(),
        available_ram_gb=round(available_ram_gb(), 1),
        load_avg=load,
        python=platform.python_version(),
        date=datetime.datetime.now().isoformat(timespec='seconds'))
    if device is not None:
        info.update(device=device, gpu=None)
        if device.startswith('cuda'):
            props = torch.cuda.get_device_properties(device)
            info.update(
                gpu=props.name,
                gpu_memory_gib=round(props.total_memory / 2**30, 1),
                cuda_version=torch.version.cuda,
                cudnn=torch.backends.cudnn.version())
    return info


def make_features(num_query: int,
                  num_gallery: int,
                  num_ids: int,
                  seed: int = 0,
                  dim: int = FEAT_DIM,
                  noise: float = 3.5,
                  exact: bool = True) -> Dict[str, Any]:
    """Deterministic synthetic query and gallery features with identities.

    Gallery pids cycle over the identities (so every identity has about
    ``G / num_ids`` images) and are shuffled; every query takes the pid of
    a random gallery image, so every query has a positive. A feature is
    its identity's random centre plus ``noise`` times Gaussian noise,
    L2-normalised, which gives non-trivial metrics.

    With ``exact`` (the metric benchmarks), about 2% of the gallery rows
    (and of the query rows) are copies of other rows, so exact score ties
    exist, and the entries are rounded to multiples of 2**-7: the products
    of two of them are multiples of 2**-14 below 1 in magnitude, so a
    512-term dot product needs at most 23 significant bits and is exact in
    float32 whatever the summation order. The implementations therefore
    see bit-identical scores even though their matrix products are blocked
    differently, and their metrics can be compared tightly. Without it
    (the search benchmark) the features are left as drawn: an approximate
    search's recall against the exact top-k is only well defined without
    ties.

    Args:
        num_query (int): Q.
        num_gallery (int): G.
        num_ids (int): Number of identities.
        seed (int): Seed of the generator. Defaults to 0.
        dim (int): Feature width. Defaults to :data:`FEAT_DIM`.
        noise (float): Scale of the noise around the centres. Defaults to
            3.5.
        exact (bool): Add the duplicate rows and round (see above).
            Defaults to True.

    Returns:
        dict: ``qf`` (Q x dim), ``gf`` (G x dim) float32 features, ``qp``
        (Q,) and ``gp`` (G,) int64 pids.
    """
    import torch
    gen = torch.Generator().manual_seed(seed)
    gp = torch.arange(num_gallery) % num_ids
    gp = gp[torch.randperm(num_gallery, generator=gen)]
    centres = torch.randn(num_ids, dim, generator=gen)

    def feats(pids: 'torch.Tensor') -> 'torch.Tensor':
        x = centres[pids] + noise * torch.randn(
            pids.numel(), dim, generator=gen)
        x = torch.nn.functional.normalize(x, dim=1)
        if not exact:
            return x
        n_dup = max(1, pids.numel() // 50)
        src = torch.randint(pids.numel(), (n_dup, ), generator=gen)
        dst = torch.randint(pids.numel(), (n_dup, ), generator=gen)
        # A repeated target would get one of its sources, which one being
        # unspecified for a (parallel) index_put: the benchmark's workers
        # could build different data. Keep the last copy, as a sequential
        # loop would.
        last = {d: i for i, d in enumerate(dst.tolist())}
        keep = torch.tensor(sorted(last.values()), dtype=torch.long)
        src, dst = src[keep], dst[keep]
        x[dst] = x[src]
        pids[dst] = pids[src]  # a copied feature keeps its identity
        return torch.round(x * 128) / 128

    gf = feats(gp)
    # drawn after the gallery copies, so every query pid has an image
    qp = gp[torch.randint(num_gallery, (num_query, ), generator=gen)]
    qf = feats(qp)
    return {'qf': qf.contiguous(), 'gf': gf.contiguous(), 'qp': qp, 'gp': gp}
