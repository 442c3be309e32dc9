"""The two backends of ``rank_queries`` side by side, in one process.

Usage::

    python .dev_scripts/bench_rank_backends.py [--quick] [--json out.json]

Feeds the same score matrix (the synthetic features of ``bench_common.py`` at
the text-to-image test-set shapes, multiplied once) to
``rank_queries(backend='numba')`` and ``rank_queries(backend='torch')``,
checks that their per-query statistics agree (integer ranks exactly, AP and
INP to 1e-12, their float64 sums running in another order) and prints the best
wall time of each and their ratio. The compiled kernel is loaded before the
clock starts (see ``benchmark.py``'s warm-up).
"""
import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common  # noqa: E402
import benchmark  # noqa: E402

#: ``--quick``: one small shape.
QUICK_SHAPES = [('toy', 300, 500, 50)]


def run(shapes: List[tuple], repeats: int) -> List[Dict[str, Any]]:
    """Best-of-``repeats`` time of each backend at each shape.

    Args:
        shapes (list[tuple]): ``(name, Q, G, ids)``.
        repeats (int): Runs per backend and shape.

    Returns:
        list[dict]: ``name``, ``shape``, ``numba_s``, ``torch_s`` and
        ``torch_over_numba`` per shape.

    Raises:
        AssertionError: the backends disagree.
    """
    import torch
    from mmreid_clip.evaluation.functional import rank_queries
    benchmark._warm_up()
    rows = []
    for name, nq, ng, nid in shapes:
        data = bench_common.make_features(nq, ng, nid)
        scores = (data['qf'] @ data['gf'].t()).contiguous()
        best, ranks = {}, {}
        for backend in ('numba', 'torch'):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                ranks[backend] = rank_queries(
                    scores=scores,
                    query_labels=data['qp'],
                    gallery_labels=data['gp'],
                    backend=backend)
                times.append(time.perf_counter() - start)
            best[backend] = min(times)
        # integer ranks exactly; AP/INP up to float64 summation order
        numba_r, torch_r = ranks['numba'], ranks['torch']
        assert torch.equal(numba_r.first_rank, torch_r.first_rank) and (
            torch.equal(numba_r.num_pos, torch_r.num_pos)) and all(
                torch.allclose(x, y, rtol=0, atol=1e-12)
                for x, y in ((numba_r.ap, torch_r.ap),
                             (numba_r.inp, torch_r.inp))), (
                                 f'{name}: the backends disagree')
        rows.append({
            'name': name,
            'shape': [nq, ng],
            'numba_s': best['numba'],
            'torch_s': best['torch'],
            'torch_over_numba': best['torch'] / best['numba'],
        })
        print(f'{name} {nq}x{ng}: numba {best["numba"]:.3f} s, torch '
              f'{best["torch"]:.3f} s, torch/numba '
              f'{best["torch"] / best["numba"]:.1f}x', flush=True)
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='one toy shape')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--json', help='write the rows to this file')
    args = parser.parse_args(argv)
    shapes = QUICK_SHAPES if args.quick else benchmark.FULL_SHAPES
    rows = run(shapes, args.repeats)
    if args.json:
        report = {'machine': bench_common.machine_info(), 'rows': rows}
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
