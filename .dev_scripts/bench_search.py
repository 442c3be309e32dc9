"""Large-gallery search: exact chunked top-k against a full sort, and faiss.

    python .dev_scripts/bench_search.py [--quick] [--json out.json]

On synthetic L2-normalised features (``N x 256`` gallery, N = 10^5, or
10^4 with ``--quick``; 1,000 / 100 queries; k = 10) it measures

* ``exact_chunked``: :func:`~mmreid_clip.apis.chunked_topk` (chunks of
  queries, stable top-k without sorting the gallery);
* ``full_sort``: the whole ``Q x N`` score matrix and a full stable sort,
  what a naive search does;

and checks that both return the same ranked lists. With ``faiss-cpu``
installed it also builds the ``flat`` (exact), ``ivf`` and ``hnsw`` indices
of :mod:`mmreid_clip.apis.search_index` and reports their build and search
time and recall@k against the exact lists.

Peak memory is the growth of the process's resident set over the
measurement (Linux: the peak is reset through ``/proc/self/clear_refs``
before each one), each method in a fresh process except with ``--quick``;
it is None where that is not available.
"""
import argparse
import hashlib
import json
import math
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Optional, Tuple

import torch

from mmreid_clip.apis.search_index import (DEFAULT_SEARCH_BUDGET, build_index,
                                           chunked_topk, search_chunk_size)

# the sibling bench_common imports as a top-level module, also when this
# file is loaded by path
_HERE = osp.dirname(osp.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from bench_common import make_features  # noqa: E402

DIM = 256
TOPK = 10
SEED = 0


def _status_kb(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def measure(fn: Callable[[], Any],
            repeats: int = 1) -> Tuple[Any, float, Optional[float]]:
    """Run ``fn``: its result, best wall time (s) and peak RSS growth (MB).

    The peak is taken over the first run only (later runs reuse memory the
    allocator kept), and only means something in a fresh process
    (:func:`measure_in_subprocess`).
    """
    best, out, peak_mb = math.inf, None, None
    for i in range(max(1, repeats)):
        before = _status_kb('VmRSS')
        can_peak = i == 0 and before is not None and _reset_peak()
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
        if can_peak:
            hwm = _status_kb('VmHWM')
            if hwm is not None:
                peak_mb = max(0, hwm - before) / 1024
    return out, best, peak_mb


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def run_method(method: str, num_gallery: int, num_query: int,
               repeats: int) -> Dict[str, Any]:
    """Time one search method on the synthetic features (child process).

    Returns:
        dict: ``time_s``, ``peak_mb`` and ``digest`` (a hash of the ranked
        lists, to compare methods across processes).
    """
    queries, gallery = search_features(num_gallery, num_query)
    fn = dict(exact_chunked=chunked_topk, full_sort=_full_sort)[method]
    fn(queries[:2], gallery[:100], TOPK)  # warm up the kernels
    (values, indices), t, peak = measure(lambda: fn(queries, gallery, TOPK),
                                         repeats)
    return dict(time_s=t, peak_mb=peak, digest=_digest(values, indices))


def measure_in_subprocess(method: str, num_gallery: int, num_query: int,
                          repeats: int) -> Dict[str, Any]:
    """:func:`run_method` in a fresh interpreter, so that memory freed by
    an earlier measurement does not hide the next one's peak."""
    code = ('import importlib.util, json, sys\n'
            'spec = importlib.util.spec_from_file_location('
            '"bench_search_child", sys.argv[1])\n'
            'mod = importlib.util.module_from_spec(spec)\n'
            'spec.loader.exec_module(mod)\n'
            'print("@@" + json.dumps(mod.run_method(sys.argv[2], '
            'int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))))\n')
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    proc = subprocess.run([
        sys.executable, '-c', code,
        osp.abspath(__file__), method,
        str(num_gallery),
        str(num_query),
        str(repeats)
    ],
                          capture_output=True,
                          text=True,
                          env=env,
                          timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('@@')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'benchmark child for {method} failed:\n'
                           f'{proc.stdout[-2000:]}{proc.stderr[-2000:]}')
    return json.loads(lines[-1][2:])


def search_features(num_gallery: int,
                    num_query: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Clustered unit features: ~10 gallery rows per identity centre.

    :func:`bench_common.make_features` without its duplicate rows and
    rounding (``exact=False``): the recall of an approximate search against
    the exact top-k is only well defined without score ties.

    Returns:
        tuple[Tensor, Tensor]: The ``Q x DIM`` queries and ``G x DIM``
        gallery, L2-normalised.
    """
    data = make_features(
        num_query,
        num_gallery,
        max(1, num_gallery // 10),
        seed=SEED,
        dim=DIM,
        noise=0.8,
        exact=False)
    return data['qf'], data['gf']


def _full_sort(queries: torch.Tensor, gallery: torch.Tensor, k: int):
    scores = queries @ gallery.t()
    values, indices = torch.sort(scores, dim=1, descending=True, stable=True)
    return values[:, :k].clone(), indices[:, :k].clone()


def _recall(found: torch.Tensor, exact: torch.Tensor) -> float:
    hits = sum(
        len(set(a) & set(b)) for a, b in zip(found.tolist(), exact.tolist()))
    return hits / max(1, exact.numel())


def bench_search(quick: bool) -> Dict[str, Any]:
    """Benchmark the large-gallery search paths.

    Args:
        quick (bool): 10^4 gallery rows and 100 queries, measured in this
            process (seconds), instead of 10^5 and 1,000, each method in a
            fresh process (minutes on 2 cores, mostly the HNSW build).

    Returns:
        dict: ``setup`` (sizes, machine), ``exact_chunked`` and
        ``full_sort`` (``time_s``, ``peak_mb``; the chunked one also
        ``chunk_size`` and ``buffer_mb``, its planned chunk-buffer bound),
        ``same_results`` (bool: identical ranked lists), and ``faiss``:
        per kind ``build_s``, ``search_s``, ``queries_per_s``,
        ``recall_at_k``, or ``{'skipped': reason}`` without faiss.
    """
    num_gallery = 10**4 if quick else 10**5
    num_query = 100 if quick else 1000
    repeats = 1 if quick else 3
    queries, gallery = search_features(num_gallery, num_query)
    chunk = search_chunk_size(num_gallery, DEFAULT_SEARCH_BUDGET)
    report: Dict[str, Any] = dict(
        setup=dict(
            num_gallery=num_gallery,
            num_query=num_query,
            memory_isolated=not quick,
            dim=DIM,
            k=TOPK,
            torch=torch.__version__,
            threads=torch.get_num_threads(),
            machine=f'{platform.machine()} {platform.system()}'))

    # a fresh process per method isolates the peak memory; --quick trades
    # that for speed (its buffers are small enough to sit in memory the
    # allocator already holds, so its peaks are indicative only)
    run = run_method if quick else measure_in_subprocess
    exact = run('exact_chunked', num_gallery, num_query, repeats)
    full = run('full_sort', num_gallery, num_query, repeats)
    report['exact_chunked'] = dict(
        time_s=exact['time_s'],
        peak_mb=exact['peak_mb'],
        chunk_size=chunk,
        buffer_mb=min(chunk, num_query) * num_gallery * 16 / 2**20)
    # scores (4 B), sorted values (4 B) and int64 indices (8 B) per cell
    report['full_sort'] = dict(
        time_s=full['time_s'],
        peak_mb=full['peak_mb'],
        buffer_mb=num_query * num_gallery * 16 / 2**20)
    report['same_results'] = exact['digest'] == full['digest']

    try:
        import faiss  # noqa: F401
    except ImportError:
        report['faiss'] = dict(skipped='faiss-cpu is not installed')
        return report
    _, ex_i = chunked_topk(queries, gallery, TOPK)
    faiss_report = {}
    # lighter build settings than the defaults: a benchmark on 2 cores
    params = dict(
        flat={},
        ivf=dict(nlist=int(math.sqrt(num_gallery)), nprobe=32),
        hnsw=dict(hnsw_m=16, ef_construction=40, ef_search=64))
    for kind, kwargs in params.items():
        index, build_s, _ = measure(
            lambda: build_index(kind, feats=gallery, **kwargs))
        (_, ids), search_s, _ = measure(lambda: index.search(queries, TOPK),
                                        repeats)
        faiss_report[kind] = dict(
            params=kwargs,
            build_s=build_s,
            search_s=search_s,
            queries_per_s=num_query / max(search_s, 1e-9),
            recall_at_k=_recall(ids, ex_i))
    report['faiss'] = faiss_report
    return report


def _fmt(value: Optional[float], spec: str = '.3f') -> str:
    return '-' if value is None else format(value, spec)


def print_report(report: Dict[str, Any]) -> None:
    s = report['setup']
    print(f'gallery {s["num_gallery"]} x {s["dim"]}, {s["num_query"]} '
          f'queries, top-{s["k"]}; torch {s["torch"]}, {s["threads"]} '
          f'threads, {s["machine"]}')
    print('| method | time (s) | peak RSS growth (MB) | notes |')
    print('|---|---|---|---|')
    ex, fs = report['exact_chunked'], report['full_sort']
    print(f'| exact chunked top-k | {_fmt(ex["time_s"])} | '
          f'{_fmt(ex["peak_mb"], ".0f")} | chunks of {ex["chunk_size"]} '
          f'queries, buffers <= {ex["buffer_mb"]:.0f} MB |')
    print(f'| full sort | {_fmt(fs["time_s"])} | '
          f'{_fmt(fs["peak_mb"], ".0f")} | Q x N scores + argsort, '
          f'{fs["buffer_mb"]:.0f} MB |')
    if not s['memory_isolated']:
        print('(--quick measures in one process: the peaks are indicative '
              'only)')
    print(f'same ranked lists: {report["same_results"]}')
    fa = report['faiss']
    if 'skipped' in fa:
        print(f'faiss: skipped ({fa["skipped"]})')
        return
    print('| faiss index | build (s) | search (s) | queries/s | recall@k | '
          'params |')
    print('|---|---|---|---|---|---|')
    for kind, r in fa.items():
        print(f'| {kind} | {_fmt(r["build_s"])} | {_fmt(r["search_s"])} | '
              f'{r["queries_per_s"]:.0f} | {r["recall_at_k"]:.4f} | '
              f'{r["params"] or "-"} |')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--quick',
        action='store_true',
        help='10^4 gallery rows instead of 10^5')
    parser.add_argument('--json', help='write the report to this file')
    args = parser.parse_args()
    report = bench_search(args.quick)
    print_report(report)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)
    if not report['same_results']:
        raise SystemExit('the chunked top-k and the full sort disagree')


if __name__ == '__main__':
    main()
