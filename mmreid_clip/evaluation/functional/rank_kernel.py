"""Compiled CPU kernel of :func:`~.ranking.rank_queries` (numba).

Same statistics, same total order and the same exactness as the tensor
path of :mod:`.ranking` (module doc there): per query, the ranks
``r_1 < ... < r_m`` of its ``m`` positives after junk removal, under the
stable descending order of the scores (ties broken by ascending gallery
index), and from them

    first_rank = r_1,   AP = (1/m) sum_i i / r_i,   INP = m / r_m.

Why a compiled kernel: the tensor path needs several full passes over every
``c x G`` chunk (order keys, a batched binary search, a scatter histogram),
about 25 ns per score on one core, three to eight times the cost of the
matrix product that made the scores. The passes below do the same work at
0.7-1.3 ns per score on one core (measured on an AMD EPYC at the
CUHK-PEDES, PRCC and LTCC shapes; rows whose last positive ranks deep, as
in cloth-changing sets, cost the most), with no ``c x G`` buffer besides
the scores themselves.

Per row, with the positives sorted along the ranking (``p_1`` ranked
first) and ``k(g) = #{j : p_j ranked before g}``:

0. the positives' order, from a radix sort on their bucket (below) and
   exact insertion steps among those sharing one (a merge sort when too
   many share one, so a row never costs the square of its positives);
1. a bucket table over the positives' score range, exact whatever the
   floating-point rounding: the bucket map ``f(s) = floor((s_{p_1} - s) *
   scale)`` is monotone in ``s`` (every rounded operation is), so
   positives in a lower bucket than ``g`` score strictly more and those in
   a higher one strictly less. ``table[f + 1]`` holds ``k`` for a bucket
   without a positive; an item sharing its bucket with a positive (64
   buckets per positive: a few percent of the items) is placed by a binary
   search among that bucket's positives with the exact tie rule;
2. pass A, branch-free and vectorised by the compiler: every item's
   table index, with a sentinel for the items scoring below ``s_{p_m}``
   (ranked after every positive: they move no rank) and for junk of a
   dense mask; it also counts the NaNs and the items in range;
3. pass B, branch-free: ``k`` of every item in range from the table into
   a histogram (four interleaved copies, so that runs of items with the
   same ``k`` do not wait on each other's increments), the items of a
   positive's bucket set aside for the exact search. When under a quarter
   of the row is in range (a good model on a large gallery), the in-range
   items are first compacted, so pass B only reads those.

``hist[k]`` counts the non-junk items with ``k(g) = k``; the positives
themselves have ``k(p_j) = j - 1``, so removing one from each of the first
``m`` bins leaves the negatives, and

    r_i = i + sum_{k < i} hist_neg[k].

Junk items of the query's own label (every ReID rule) are counted like any
item and then taken out of their bin, O(M) per row instead of a mask.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Tuple

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a declared dependency
    numba = None

__all__ = ['HAS_NUMBA', 'rank_rows']

HAS_NUMBA = numba is not None

# Rows per thread task: small enough to balance rows of uneven cost (their
# in-range share varies), large enough that dispatch is negligible.
_ROWS_PER_TASK = 64

# Buckets per positive in the score-range table: with 64, few kept items
# share a bucket with a positive (the only ones compared exactly, with
# unpredictable branches); measured best among 4-256 at the CUHK-PEDES,
# ICFG-PEDES, PRCC and LTCC shapes. Capped by the gallery size, since the
# table is filled once per row.
_BUCKETS_PER_POSITIVE = 64

# Insertion steps per positive that _sort_positives allows before it
# merge-sorts the row's positives instead. Insertion costs the square of the
# longest run of positives sharing a bucket: a few steps at 64 buckets per
# positive, but all of them when one positive scores far above the rest (its
# range squeezes the others into one bucket: 20 ms per row at 10,000
# positives, 4 ms with the merge sort).
_INSERTION_STEPS_PER_POSITIVE = 32


def _num_buckets_py(num_pos, num_gallery):  # pragma: no cover - numba
    """Buckets of the table of a row with ``num_pos`` positives."""
    return max(1, min(_BUCKETS_PER_POSITIVE * num_pos,
                      max(64, num_gallery)))


def _bucket_py(s, hi, scale, buckets):  # pragma: no cover - numba
    """Table index (bucket + 1, in ``1..buckets``) of a score ``s <= hi``.

    The one bucket map of the kernel, for the positives and the items
    alike: exactness rests on applying the same monotone map to both.
    ``scale == 0`` (one bucket) never multiplies, so no 0 * inf NaN.
    """
    t = (hi - s) * scale if scale > 0.0 else 0.0
    return np.int64(min(max(t, 0.0), buckets - 1.0)) + 1


def _sort_positives_py(m, raw, tmp, counts, buckets, out
                       ):  # pragma: no cover - compiled by numba
    """Sort a row's ``m`` positives along the ranking into ``out``.

    ``raw[0]``/``raw[1]``/``raw[2]`` hold their table indices (``_bucket``),
    scores and gallery indices (float64 rows; ``tmp`` is scratch of the same
    shape). The order is descending score, ties by ascending gallery index,
    that of a full stable sort. The bucket map is monotone, so a stable LSD
    radix sort on the table index (8-bit digits, ascending) orders the
    positives up to those sharing a bucket; insertion steps with the exact
    rule then move only those (a few per row at 64 buckets per positive;
    past ``_INSERTION_STEPS_PER_POSITIVE`` steps per positive, a merge sort
    takes over).
    About 4x cheaper at ~90 positives than numba's merge-sort argsort, whose
    three allocations per row cost more than the sort.
    """
    src, dst = raw, tmp
    if m > 16:  # below that the insertion steps alone are cheaper
        shift = 0
        while (buckets + 1) >> shift:
            counts[:] = 0
            for j in range(m):
                counts[(np.int64(src[0, j]) >> shift) & 255] += 1
            at = 0
            for d in range(256):
                size = counts[d]
                counts[d] = at
                at += size
            for j in range(m):
                d = (np.int64(src[0, j]) >> shift) & 255
                at = counts[d]
                counts[d] = at + 1
                dst[0, at] = src[0, j]
                dst[1, at] = src[1, j]
                dst[2, at] = src[2, j]
            src, dst = dst, src
            shift += 8
    moves = 0
    budget = _INSERTION_STEPS_PER_POSITIVE * m
    for j in range(m):
        b = src[0, j]
        s = src[1, j]
        g = src[2, j]
        i = j
        while i > 0 and (out[0, i - 1] > b or (
                out[0, i - 1] == b and (out[1, i - 1] < s or (
                    out[1, i - 1] == s and out[2, i - 1] > g)))):
            out[0, i] = out[0, i - 1]
            out[1, i] = out[1, i - 1]
            out[2, i] = out[2, i - 1]
            i -= 1
        moves += j - i
        if moves > budget:  # src is untouched: start over
            _merge_sort_positives(m, src, out)
            return
        out[0, i] = b
        out[1, i] = s
        out[2, i] = g


def _merge_sort_positives_py(m, src, out):  # pragma: no cover - numba
    """``_sort_positives``' order by two stable merge sorts (by gallery
    index, then by descending score), which also orders the buckets: their
    map is monotone. Its own function: inlined, its allocations slowed the
    common path of ``_sort_positives`` by a tenth."""
    by_index = np.argsort(src[2, :m], kind='mergesort')
    order = by_index[np.argsort(-src[1, :m][by_index], kind='mergesort')]
    for i in range(m):
        out[0, i] = src[0, order[i]]
        out[1, i] = src[1, order[i]]
        out[2, i] = src[2, order[i]]


def _items_before_py(bi, s, g, table, p_score, p_index
                     ):  # pragma: no cover - compiled by numba
    """k: how many of the sorted positives are ranked before item ``g``
    (score ``s``, table index ``bi`` from pass A, not the sentinel): the
    table's count, or when ``g`` shares its bucket with positives, a binary
    search among them with the exact tie rule."""
    code = table[bi]
    k = code >> 1
    if not code & 1:
        return k
    end = table[bi + np.uint64(1)] >> 1
    if end - k == 1:
        # one positive in the bucket (the common case): a comparison
        # without the search loop's unpredictable branch
        before = (p_score[k] > s) | ((p_score[k] == s) & (p_index[k] < g))
        return k + np.int64(before)
    # invariant: positives before k are ranked before g, from end on after
    while k < end:
        mid = (k + end) >> 1
        if p_score[mid] > s or (p_score[mid] == s and p_index[mid] < g):
            k = mid + 1
        else:
            end = mid
    return k


def _rank_rows_py(scores, pos_cols, pos_state, junk, has_junk, first, ap,
                  inp, num_pos, num_nan):  # pragma: no cover - numba
    """Fill ``first``/``ap``/``inp``/``num_pos``/``num_nan`` per row.

    Compiled by numba (``njit(nogil=True)``, so that threads can run row
    blocks side by side); see :func:`rank_rows`. ``num_nan[q]`` counts the
    NaN scores of row ``q`` (the caller raises: its ranks are meaningless).
    """
    num_rows, num_gallery = scores.shape
    width = pos_cols.shape[1]
    # scratch, allocated once: a per-row allocation costs as much as the
    # pass over a short row
    max_buckets = _num_buckets(width, num_gallery)
    # the positives' (table index, score, gallery index): as gathered, the
    # sort's scratch, sorted (float64: the indices are exact below 2**53)
    raw = np.empty((3, width), np.float64)
    tmp = np.empty((3, width), np.float64)
    ordered = np.empty((3, width), np.float64)
    p_score = ordered[1]
    p_index = np.empty(width, np.int64)
    counts = np.empty(256, np.int64)
    table = np.empty(max_buckets + 2, np.int64)
    hist = np.empty(width + 1, np.int64)
    # interleaved histogram copies of pass B
    hist4 = np.empty((4, width + 1), np.int64)
    # per item: its table index (pass A), then the in-range items
    index = np.empty(num_gallery, np.int64)
    candidates = np.empty(num_gallery, np.int64)
    tricky = np.empty(num_gallery, np.int64)
    sink = np.empty(1, scores.dtype)
    for q in range(num_rows):
        row = scores[q]
        # Read the row once in order (a load per cache line) before the
        # positives are gathered from it: a sequential stream the hardware
        # prefetches, instead of a random gather from memory (15% of the
        # kernel's time at the ReID shapes).
        touch = row.dtype.type(0.0)
        for g in range(0, num_gallery, 16):
            touch += row[g]
        sink[0] = touch
        # the row's positives and their score range
        m = 0
        hi = -np.inf
        lo64 = np.inf
        pos_nan = False
        for j in range(width):
            if pos_state[q, j] == 1:
                col = pos_cols[q, j]
                s = np.float64(row[col])
                raw[1, m] = s
                raw[2, m] = col
                hi = s if s > hi else hi
                lo64 = s if s < lo64 else lo64
                pos_nan |= s != s
                m += 1
        num_pos[q] = m
        if m == 0 or pos_nan:
            # nothing to rank, or NaN ranks: the NaNs are still counted
            # (the caller raises for them)
            nan = 0
            for g in range(num_gallery):
                nan += row[g] != row[g]
            num_nan[q] = nan
            first[q] = 0
            ap[q] = 0.0
            inp[q] = 0.0
            continue
        lo = row.dtype.type(lo64)
        buckets = _num_buckets(m, num_gallery)
        scale = buckets / (hi - lo64) if hi > lo64 else 0.0
        if not (np.isfinite(scale) and np.isfinite(hi - lo64)):
            scale = 0.0
        for j in range(m):
            raw[0, j] = _bucket(raw[1, j], hi, scale, buckets)
        _sort_positives(m, raw, tmp, counts, buckets, ordered)
        for j in range(m):
            p_index[j] = np.int64(ordered[2, j])

        # Bucket table, indexed by bucket + 1 (index 0: above p_1, index
        # buckets + 1: the sentinel, after p_m): table[bi] = 2 * (#positives
        # in lower indices) + (bucket holds a positive). One bucket (exact
        # comparisons with every positive) when the range is empty or not
        # finite, where the map would make NaN (inf - inf, 0 * inf).
        filled = 0  # table entries written so far
        for j in range(m):
            bi = np.int64(ordered[0, j])
            if bi >= filled:
                table[filled:bi] = 2 * j
                table[bi] = 2 * j + 1
                filled = bi + 1
        table[filled:buckets + 2] = 2 * m

        # Pass A, branch-free (selects only, so the compiler vectorises
        # it): the table index of every item, _bucket's map written out;
        # a NaN fails every comparison and lands on the sentinel.
        sentinel = buckets + 1
        cap = buckets - 1.0
        nan = 0
        kept = 0
        if scale > 0.0:
            for g in range(num_gallery):
                s = np.float64(row[g])
                t = (hi - s) * scale
                t = t if t < cap else cap
                bi = np.int64(t) + 1
                bi = 0 if s > hi else bi
                bi = bi if s >= lo64 else sentinel
                index[g] = bi
                nan += s != s
                kept += bi != sentinel
        else:
            for g in range(num_gallery):
                s = np.float64(row[g])
                bi = 0 if s > hi else 1
                bi = bi if s >= lo64 else sentinel
                index[g] = bi
                nan += s != s
                kept += bi != sentinel
        num_nan[q] = nan
        if nan:
            # NaN scores make the ranks meaningless: the caller raises
            first[q] = 0
            ap[q] = 0.0
            inp[q] = 0.0
            continue
        if has_junk:
            for g in range(num_gallery):
                if junk[q, g]:
                    index[g] = sentinel

        # Pass B, branch-free: k straight from the table, except for the
        # items sharing a bucket with a positive, set aside. hist[k]:
        # items with k positives ranked before them (k = m: after p_m or
        # junk; never read). The indices computed in these loops are cast
        # to unsigned: numba wraps negative signed indices, a compare and
        # select per access, which was about a fifth of the kernel's time.
        hist4[:, :m + 1] = 0
        num_tricky = 0
        if has_junk or 4 * kept >= num_gallery:
            for g in range(num_gallery):
                code = table[np.uint64(index[g])]
                hard = code & 1
                hist4[g & 3, np.uint64(code >> 1)] += 1 - hard
                tricky[num_tricky] = g
                num_tricky += hard
        else:
            # few items in range: compact them first (one cheap pass)
            kept = 0
            for g in range(num_gallery):
                candidates[kept] = g
                kept += index[g] != sentinel
            for i in range(kept):
                g = candidates[i]
                code = table[np.uint64(index[np.uint64(g)])]
                hard = code & 1
                hist4[i & 3, np.uint64(code >> 1)] += 1 - hard
                tricky[num_tricky] = g
                num_tricky += hard
        for k in range(m + 1):
            hist[k] = hist4[0, k] + hist4[1, k] + hist4[2, k] + hist4[3, k]
        for i in range(num_tricky):
            g = tricky[i]
            u = np.uint64(g)
            k = _items_before(np.uint64(index[u]), np.float64(row[u]), g,
                              table, p_score, p_index)
            hist[np.uint64(k)] += 1
        # junk items of the query's own label, counted above like any item
        # when kept: O(M) to take them out instead of an O(G) mask
        for j in range(width):
            if pos_state[q, j] == 2:
                g = pos_cols[q, j]
                if row[g] >= lo and not (has_junk and junk[q, g]):
                    k = _items_before(np.uint64(index[g]),
                                      np.float64(row[g]), g, table, p_score,
                                      p_index)
                    hist[k] -= 1

        # p_i itself has k = i - 1: hist[i - 1] - 1 negatives more are
        # ranked before p_i than before p_{i-1}
        ahead = 0
        total = 0.0
        rank = 0
        for i in range(m):
            ahead += hist[i] - 1
            rank = i + 1 + ahead
            if i == 0:
                first[q] = rank
            total += (i + 1) / rank
        ap[q] = total / m
        inp[q] = m / rank


def _jit(func, **options):
    """``numba.njit`` with the on-disk cache where numba can keep one.

    numba refuses ``cache=True`` (RuntimeError at decoration) when it finds
    no writable cache location (no writable ``__pycache__`` beside the
    source nor a user cache directory, e.g. a read-only container without
    a home): the kernel is then compiled once per process instead, rather
    than the whole package failing to import.
    """
    try:
        return numba.njit(cache=True, **options)(func)
    except RuntimeError:
        return numba.njit(cache=False, **options)(func)


if HAS_NUMBA:
    # lazy: compiled at the first call, or loaded from the on-disk cache
    _num_buckets = _jit(_num_buckets_py)
    _bucket = _jit(_bucket_py)
    _items_before = _jit(_items_before_py)
    _merge_sort_positives = _jit(_merge_sort_positives_py)
    _sort_positives = _jit(_sort_positives_py)
    _kernel = _jit(_rank_rows_py, nogil=True)


_POOL_LOCK = threading.Lock()
_POOL: Optional[ThreadPoolExecutor] = None
_POOL_SIZE = 0
_POOL_PID = 0


def _helper_pool(size: int) -> ThreadPoolExecutor:
    """A process-wide pool of at least ``size`` helper threads.

    Kept between calls: starting threads anew took 1-2 ms per call on a
    loaded machine. Rebuilt in a forked child (the parent's threads do not
    exist there) and when more helpers are asked for.
    """
    global _POOL, _POOL_SIZE, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < size or _POOL_PID != os.getpid():
            if _POOL is not None and _POOL_PID == os.getpid():
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(size, thread_name_prefix='rank_rows')
            _POOL_SIZE, _POOL_PID = size, os.getpid()
        return _POOL


def rank_rows(scores: np.ndarray,
              pos_cols: np.ndarray,
              pos_state: np.ndarray,
              junk: Optional[np.ndarray] = None,
              num_threads: Optional[int] = None
              ) -> Tuple[np.ndarray, ...]:
    """Ranking statistics of a block of queries, two main passes per row.

    Args:
        scores (np.ndarray): ``(c, G)`` float32 or float64 scores without
            NaN (larger = more similar); not modified.
        pos_cols (np.ndarray): int64 ``(c, M)`` gallery indices of the
            candidate positives of each row.
        pos_state (np.ndarray): int8 ``(c, M)``: 1 for the real positives,
            2 for items of the query's label that are junk (removed from
            the ranking; cheaper than marking them in ``junk``), 0 for
            padding or anything else to ignore. Each row's columns with a
            state 1 or 2 must be distinct.
        junk (np.ndarray, optional): bool ``(c, G)``, items removed from
            the row's ranking. Positives must not be junk.
        num_threads (int, optional): Threads sharing the rows (blocks of
            64); None or 1 runs them in the calling thread.

    Returns:
        tuple: ``first_rank`` (int64), ``ap`` (float64), ``inp`` (float64),
        ``num_pos`` (int64) and ``num_nan`` (int64: NaN scores of the row,
        whose statistics are then meaningless; the caller must check), each
        ``(c,)``; the first four are 0 for rows without positives.

    Raises:
        ValueError: inconsistent shapes, or gallery indices out of range
            (the compiled code does not bounds-check).
        ImportError: numba is not installed.
    """
    if not HAS_NUMBA:
        raise ImportError('the compiled ranking kernel needs numba '
                          '(pip install numba)')
    scores = np.ascontiguousarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float32)
    pos_cols = np.ascontiguousarray(pos_cols, dtype=np.int64)
    pos_state = np.ascontiguousarray(pos_state, dtype=np.int8)
    if scores.ndim != 2 or pos_cols.ndim != 2 or (
            pos_cols.shape != pos_state.shape
            or pos_cols.shape[0] != scores.shape[0]):
        raise ValueError(
            f'rank_rows: scores {scores.shape}, pos_cols {pos_cols.shape} '
            f'and pos_state {pos_state.shape} must be (c, G), (c, M), (c, M)')
    if pos_cols.size and (pos_cols.min() < 0
                          or pos_cols.max() >= scores.shape[1]):
        raise ValueError(
            f'rank_rows: pos_cols must index the {scores.shape[1]} gallery '
            f'columns, got values in [{pos_cols.min()}, {pos_cols.max()}]')
    has_junk = junk is not None
    if has_junk:
        junk = np.ascontiguousarray(junk, dtype=np.bool_)
        if junk.shape != scores.shape:
            raise ValueError(f'rank_rows: junk {junk.shape} must have the '
                             f'shape of scores {scores.shape}')
    else:
        junk = np.zeros((1, 1), dtype=np.bool_)
    c = scores.shape[0]
    first = np.zeros(c, np.int64)
    ap = np.zeros(c, np.float64)
    inp = np.zeros(c, np.float64)
    num_pos = np.zeros(c, np.int64)
    num_nan = np.zeros(c, np.int64)
    kernel = _kernel

    def run(start: int) -> None:
        rows = slice(start, min(start + _ROWS_PER_TASK, c))
        kernel(scores[rows], pos_cols[rows], pos_state[rows],
               junk[rows] if has_junk else junk, has_junk, first[rows],
               ap[rows], inp[rows], num_pos[rows], num_nan[rows])

    starts = range(0, c, _ROWS_PER_TASK)
    threads = min(len(starts), max(1, int(num_threads or 1)))
    if threads == 1:
        for start in starts:
            run(start)
        return first, ap, inp, num_pos, num_nan
    # The kernel releases the GIL: row blocks run truly in parallel. The
    # calling thread takes blocks too, from the same queue, and then waits
    # only for the blocks already taken: when the other cores are busy a
    # helper may not be scheduled for a while, and the caller does its
    # share of the work meanwhile rather than idle until it is (a helper
    # that starts late finds the queue empty).
    lock = threading.Lock()
    finished = threading.Event()
    progress = [0, 0]  # blocks taken, blocks done
    errors = []

    def drain() -> None:
        while True:
            with lock:
                if progress[0] == len(starts):
                    return
                start = starts[progress[0]]
                progress[0] += 1
            try:
                run(start)
            except BaseException as err:  # re-raised by the caller
                errors.append(err)
            with lock:
                progress[1] += 1
                if progress[1] == len(starts):
                    finished.set()

    pool = _helper_pool(threads - 1)
    for _ in range(threads - 1):
        pool.submit(drain)
    drain()
    finished.wait()
    if errors:
        raise errors[0]
    return first, ap, inp, num_pos, num_nan
