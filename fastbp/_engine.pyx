# cython: language_level=3
"""The compiled backpropagation engine.

Mini-batch form of the four equations of backpropagation, one sample per row
(A^0 is m x n_0, W^l is n_l x n_{l-1} as in the book):

    Z^l = A^{l-1} (W^l)^T + 1 (b^l)^T,   A^l = f_l(Z^l)       feedforward
    D^L = grad_A C (.) f_L'(Z^L)                                 BP1
    D^l = (D^{l+1} W^{l+1}) (.) f_l'(Z^l)                        BP2
    dC/db^l = column sums of D^l                                 BP3
    dC/dW^l = (D^l)^T A^{l-1}                                    BP4

The matrix products are BLAS gemm calls (fastbp/_blas.pxd), but for those
of narrow layers in the epoch loop, which are C kernels, the first layer's
reading the samples in place (csrc/fastbp_small_gemm.c; see
small_layers); the element-wise work is C
(csrc/fastbp_kernels.c).  The SGD step is folded into the BP4 product:
W^l <- decay W^l - (eta/m) (D^l)^T A^{l-1}, with beta = decay, so the
gradient is never stored.

A mini-batch is applied only as a whole.  Its forward pass and all of its
errors D^l are computed first (BP2 uses the weights before the step); then,
if every z and every delta is finite and a cheap bound shows that the step
cannot overflow, all layers are updated.  Otherwise nothing of that
mini-batch is applied and the caller is told.

The epoch loop reads its samples through a Samples: a table of pointers to
the rows of X and Y, or to the arrays of the book's list of (x, y) pairs,
so that neither needs copying; each mini-batch's rows are gathered into a
buffer of the network's dtype.

Threads: with T > 1 the epoch loop runs in an OpenMP parallel region.
Each layer's neurons are cut into a few fixed blocks, and thread t owns whole
blocks: its columns of Z^l, A^l and D^l, its rows of W^l and b^l.  So the
feedforward and BP2 products are split by output columns and the BP4 update
by rows of W^l; no two threads ever write the same memory, and a barrier
stands wherever a thread next reads what the others wrote (all of A^l, all
of D^{l+1}).  A layer of one block hands BP2 below it to its owner, which
needs no barrier for it, and consecutive mini-batches use alternate sets of
activations, so none is needed between them either: W1 ([784, 30, 10]) has
two barriers a mini-batch.  Each thread gathers its own copy of the
mini-batch's inputs, or, where the first layer's products are the small
kernels, reads them where they lie.  BLAS itself runs single-threaded
meanwhile (the Python layer arranges it).

Nothing here checks its arguments beyond what memory safety needs: the
Python layer (fastbp/_training.py) validates everything first.
"""
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from libc.math cimport fabs
from libc.float cimport DBL_MAX
from cython cimport floating
cimport cython
from cython.parallel cimport parallel, prange, threadid
cimport openmp

cdef extern from "Python.h":
    # Declared here without an exception spec: the epoch loop looks at the
    # result itself, stops, and the def that called it re-raises.
    int _check_signals "PyErr_CheckSignals"() noexcept

from scipy.linalg.cython_blas cimport dgemv

from ._blas cimport gemm_rowmajor, NoTrans, Trans
from ._kernels cimport (activate, times_derivative, output_error, bias_update,
                        gather_rows, max_abs, fbp_max_abs_d, fbp_max_abs_f,
                        fbp_rows_max_abs_d, fbp_rows_max_abs_f,
                        cost_sum, argmax_rows,
                        fbp_barrier, fbp_barrier_init, fbp_barrier_wait,
                        fbp_prefetch, fbp_prefetch_start, fbp_barrier_wait_prefetching,
                        FBP_SIGMOID, FBP_TANH, FBP_QUADRATIC, FBP_CROSS_ENTROPY,
                        fbp_unary_loop, fbp_book_sigmoid, fbp_book_output_error,
                        fbp_book_times_derivative, fbp_book_weight_step,
                        fbp_book_bias_step, fbp_book_gemv_usable, fbp_book_gemv_wide,
                        fbp_book_step_variant, FBP_BOOK_PORTABLE, FBP_BOOK_AVX2,
                        FBP_BOOK_AVX512, fbp_book_gemv, fbp_small_gemm_available,
                        FBP_SMALL_AVX2, FBP_SMALL_AVX512, small_gemm_nt, small_gemm_tn,
                        small_gemm_nn)

import os
import warnings

import numpy as np
cimport numpy as cnp

cnp.import_array()

# Statuses returned by train_epoch.
cdef enum Status:
    STATUS_OK = 0
    STATUS_DIVERGED = 1
    STATUS_INTERRUPTED = 2

OK = STATUS_OK
DIVERGED = STATUS_DIVERGED

# Weights, biases, z or deltas beyond this are taken as divergence: it keeps
# every product and sum of the update well inside the floating-point range.
cdef double LIMIT_DOUBLE = 1e300
cdef double LIMIT_FLOAT = 1e36

# Each layer's neurons are cut into at most BLOCKS fixed blocks of at least
# BLOCK_MIN neurons; threads take whole blocks.  The blocks depend on the
# layer's width, the dtype and the machine only, never on the number of threads, so
# every BLAS call (and so every rounding) is the same whatever the thread
# count: the result of training does not depend on it.  BLOCKS is the
# machine's number of logical CPUs (os.cpu_count(), a constant of the
# machine, unlike the CPUs a process may use) rounded down to a power of
# two, at most MAX_BLOCKS: one block per thread when the engine uses every
# CPU, since each gemm call packs its shared operand (A^{l-1}, or D^{l+1})
# anew, and on 2 cores four blocks of W2's 1024-neuron layers instead of two
# made epochs measurably slower.  Blocks start on whole cache lines of a
# layer's rows (see _make_blocks and _row_stride), to keep threads off each
# other's cache lines.
DEF MAX_BLOCKS = 4
DEF SMALL_ROWS = 32             # the most samples the small kernels take at once
cdef Py_ssize_t BLOCK_MIN = 8


def _blocks_for(cores):
    """The most blocks per layer: cores rounded down to a power of two, at
    most MAX_BLOCKS."""
    blocks = 1
    while blocks * 2 <= min(cores, MAX_BLOCKS):
        blocks *= 2
    return blocks


BLOCKS = _blocks_for(os.cpu_count() or 1)
cdef Py_ssize_t _BLOCKS = BLOCKS


def _set_blocks(Py_ssize_t blocks):
    """Cut layers into at most `blocks` blocks from now on (1, 2 or 4;
    for tests of the thread split on a machine with fewer cores).
    Returns the previous setting."""
    global BLOCKS, _BLOCKS
    if blocks not in (1, 2, 4):
        raise ValueError("blocks must be 1, 2 or 4")
    previous, BLOCKS, _BLOCKS = BLOCKS, blocks, blocks
    return previous

# Scans of at least this many values (max |x| over a training set) are
# split over two threads.
cdef Py_ssize_t SPLIT_MAX_ABS = 1 << 22

# The engine's buffers start on a cache line.  A vector load from a buffer
# that does not (NumPy's allocations are 16-byte aligned) spans two lines,
# and the small gemms of a narrow network run measurably slower on it; so an
# epoch call of at least ALIGNED_COPY_MIN_BATCHES mini-batches also trains
# aligned copies of weights and biases that are not, and writes them back
# before it returns.
cdef size_t CACHE_LINE = 64
cdef Py_ssize_t ALIGNED_COPY_MIN_BATCHES = 8
# The same, for fastbp.arrays (aligned_empty's alignment).
CACHE_LINE_BYTES = CACHE_LINE


cdef inline double _limit(floating x) noexcept nogil:
    if floating is float:
        return LIMIT_FLOAT
    else:
        return LIMIT_DOUBLE


cdef inline bint _bounded(int act) noexcept nogil:
    """Whether |f(z)| <= 1 for every z (sigmoid, tanh)."""
    return act == FBP_SIGMOID or act == FBP_TANH


cdef inline double _max_nan(double m, double x) noexcept nogil:
    """A running maximum that a NaN poisons for good."""
    return x if (x > m or x != x) else m


cdef struct Layers:
    # Layers l = 0 .. L-1; l = 0 is the input, which has no weights and no delta.
    Py_ssize_t L
    Py_ssize_t *sizes
    int *acts
    void **W              # W[l]: n_l x n_{l-1}
    void **b              # b[l]: n_l
    void **A              # A[l]: batch x n_l activations (l >= 1), rows ld[l] apart;
                          # in the epoch loop A[L + l] is a second set (see _train)
    void **D              # D[l]: batch x n_l errors delta^l (l >= 1), rows ld[l] apart
    Py_ssize_t *ld        # ld[l]: the row stride of A^l and D^l (ld[0] = n_0, the inputs')
    int *small            # small[l]: layer l's products (feedforward, BP4, and BP2 through
                          # W^l) are the small kernels' (small_layers), in this variant
                          # (FBP_SMALL_AVX512 or FBP_SMALL_AVX2), or BLAS's where 0
    void *inputs[MAX_BLOCKS]  # inputs[t]: thread t's copy of the mini-batch's A^0
    const void **x_rows   # NULL, or where small[1] (layer 1's products are the small
                          # kernels'): x_rows[t * x_rows_ld + s], the row of
                          # A^0 that thread t reads for sample s (see _train) ...
    const void **x_next   # ... and x_next[t * x_rows_ld + s], the rows of the
                          # mini-batch after next, which thread t fetches during BP4
    Py_ssize_t x_next_count  # how many x_next holds (set in each thread's view)
    Py_ssize_t x_rows_ld  # the row stride of both tables (a cache line's multiple)
    void *targets[2]      # the mini-batch's Y, double-buffered
    int T                 # threads
    Py_ssize_t *nblocks   # nblocks[l]: blocks of layer l
    Py_ssize_t *bounds    # bounds[l*(MAX_BLOCKS+1) + k]: first neuron of block k
    double *zmax          # zmax[t*L + l]: max |z^l| over thread t's neurons
    double *dmax          # dmax[t*L + l]: max |delta^l| over the neurons thread t
                          # computed (zmax, dmax: a second set of T*L follows)
    double *wscan         # wscan[t*L + l]: exact max |W^l| over thread t's rows
    double *bscan         # bscan[t*L + l]: exact max |b^l| over thread t's entries
    double *wbound        # wbound[t*L + l]: thread t's copy of a bound on max |W^l|
    double *bbound        # bbound[t*L + l]: the same for b^l
    fbp_barrier *barrier  # where the threads wait for each other
    int *sense            # sense[t]: thread t's side of the barrier
    fbp_prefetch *ahead   # ahead[t]: the rows thread t fetches while it waits


cdef inline void _wait(Layers *net, int t) noexcept nogil:
    fbp_barrier_wait_prefetching(net.barrier, &net.sense[t], &net.ahead[t])


cdef bint _interrupted(fbp_barrier *barrier, int *sense, int t, int *stop,
                      Py_ssize_t *calls, Py_ssize_t every) noexcept nogil:
    """Whether to stop for a signal, looked for at every `every`-th call
    (*calls counts them; once per mini-batch in the epoch loops): thread 0
    takes the GIL to let Python run its signal handlers (Ctrl-C) and sets
    *stop if one raised (the exception stays set); every thread waits at
    the barrier, then reads it."""
    calls[0] += 1
    if calls[0] < every:
        return False
    calls[0] = 0
    if t == 0:
        with gil:
            if _check_signals() != 0:
                stop[0] = 1
    fbp_barrier_wait(barrier, &sense[t])
    return stop[0] != 0


cdef inline Py_ssize_t _bound(Layers *net, Py_ssize_t l, Py_ssize_t k) noexcept nogil:
    """The first neuron of block k of layer l (k = nblocks[l]: the width)."""
    return net.bounds[l * (MAX_BLOCKS + 1) + k]


cdef inline Py_ssize_t _first_block(Layers *net, int t, Py_ssize_t l) noexcept nogil:
    """Thread t owns the blocks [_first_block(t), _first_block(t + 1)) of layer l."""
    return (net.nblocks[l] * t) // net.T


cdef void _make_blocks(Layers *net, Py_ssize_t align) noexcept nogil:
    """Cut each layer into 1, 2 or 4 (at most BLOCKS) blocks of at least
    BLOCK_MIN neurons, each starting on a multiple of `align` columns (a
    cache line of values) where that moves its first neuron by at most an
    eighth of a block (W1's 30 neurons: 16 and 14), else evenly."""
    cdef Py_ssize_t l, n, k, nb, even, lo, previous
    for l in range(net.L):
        n = net.sizes[l]
        nb = 1
        while nb * 2 <= _BLOCKS and n // (nb * 2) >= BLOCK_MIN:
            nb *= 2
        net.nblocks[l] = nb
        previous = 0
        for k in range(nb + 1):
            even = (n * k) // nb
            lo = even
            if 0 < k < nb:
                lo = ((even + align // 2) // align) * align  # the nearest multiple
                if not (previous < lo < n and 8 * max(lo - even, even - lo) <= n // nb):
                    lo = even
            net.bounds[l * (MAX_BLOCKS + 1) + k] = lo
            previous = lo


cdef Py_ssize_t _row_stride(Py_ssize_t n, bint split, Py_ssize_t align) noexcept nogil:
    """The row stride of a layer's A^l and D^l: a split layer's rows are
    padded to whole cache lines (`align` values), so that with aligned block
    bounds no two threads write into one cache line (false sharing would
    make them exchange it at every row)."""
    if not split:
        return n
    return ((n + align - 1) // align) * align


cdef void _set_threads(Layers *net, int T) noexcept nogil:
    cdef int t
    net.T = T
    fbp_barrier_init(net.barrier, T)
    for t in range(T):
        net.sense[t] = 0


cdef inline const void **_small_rows(Layers *net, int t, Py_ssize_t l, const void **table,
                                     const floating *a_in, Py_ssize_t ld_in,
                                     Py_ssize_t m) noexcept nogil:
    """The m rows of A^{l-1} as layer l's small kernels take them: for layer
    1 thread t's table of the inputs (filled by _train), else `table`
    (SMALL_ROWS entries) filled with the rows of a_in, ld_in apart."""
    cdef Py_ssize_t s
    if l == 1:
        return net.x_rows + t * net.x_rows_ld
    for s in range(m):
        table[s] = a_in + s * ld_in
    return table


cdef void _forward(Layers *net, const floating *a0, Py_ssize_t m,
                   int t) noexcept nogil:
    """Feedforward of m rows for thread t's neurons:
    A^l[:, own] = f(A^{l-1} W^l[own, :]^T + b^l[own]), l = 1 .. L-1."""
    cdef Py_ssize_t l, L = net.L, lo, hi, k
    cdef int n_in, ld_in, ld_out
    cdef const floating *a_in
    cdef floating *a_out
    cdef const void *table[SMALL_ROWS]
    cdef const void **rows_in = NULL
    for l in range(1, L):
        n_in = <int> net.sizes[l - 1]
        ld_in = <int> net.ld[l - 1]
        ld_out = <int> net.ld[l]
        a_in = a0 if l == 1 else <floating *> net.A[l - 1]
        a_out = <floating *> net.A[l]
        if net.small[l]:
            rows_in = _small_rows(net, t, l, table, a_in, ld_in, m)
        net.zmax[t * L + l] = 0
        for k in range(_first_block(net, t, l), _first_block(net, t + 1, l)):
            lo = _bound(net, l, k)
            hi = _bound(net, l, k + 1)
            # Z^l[:, own] = A^{l-1} (W^l[own, :])^T
            if net.small[l]:
                small_gemm_nt(net.small[l], m, hi - lo, n_in, rows_in,
                              <floating *> net.W[l] + lo * n_in, n_in, a_out + lo, ld_out)
            else:
                gemm_rowmajor(NoTrans, Trans, <int> m, <int> (hi - lo), n_in,
                              <floating> 1, a_in, ld_in,
                              <floating *> net.W[l] + lo * n_in, n_in,
                              <floating> 0, a_out + lo, ld_out)
            # A^l = f(Z^l + 1 b^T), in place
            net.zmax[t * L + l] = _max_nan(net.zmax[t * L + l], activate(
                net.acts[l], a_out + lo, ld_out, <floating *> net.b[l] + lo, m, hi - lo))
        if l < L - 1:
            _wait(net, t)           # the next layer reads all of A^l


cdef void _backward(Layers *net, int cost, const floating *y, Py_ssize_t m,
                    int t) noexcept nogil:
    """D^L by BP1, then D^l by BP2 for l = L-2 .. 1, thread t's neurons.

    Where layer l + 1 is one block, the thread that owns it computes every
    block of D^l itself (the same products, so the same bits), straight
    after D^{l+1} and without a barrier: in W1 ([784, 30, 10]) the narrow
    layer's deltas are ready a barrier sooner, and the other thread would
    only wait for them."""
    cdef Py_ssize_t l, L = net.L, lo, hi, k, k0, k1
    cdef int n_l, n_next, ld_l, ld_next
    n_l = <int> net.sizes[L - 1]
    ld_l = <int> net.ld[L - 1]
    net.dmax[t * L + L - 1] = 0
    for k in range(_first_block(net, t, L - 1), _first_block(net, t + 1, L - 1)):
        lo = _bound(net, L - 1, k)
        hi = _bound(net, L - 1, k + 1)
        # delta^L = grad_a C (.) f'(z^L)                                    (BP1)
        net.dmax[t * L + L - 1] = _max_nan(net.dmax[t * L + L - 1], output_error(
            cost, net.acts[L - 1], <floating *> net.D[L - 1] + lo, ld_l,
            <floating *> net.A[L - 1] + lo, ld_l, y + lo, n_l, m, hi - lo))
    for l in range(L - 2, 0, -1):
        if net.nblocks[l + 1] == 1:
            # D^{l+1} is this thread's or another's: all of D^l or none
            k0 = 0
            k1 = net.nblocks[l] if _first_block(net, t + 1, l + 1) == 1 else 0
        else:
            _wait(net, t)           # BP2 reads all of D^{l+1}
            k0 = _first_block(net, t, l)
            k1 = _first_block(net, t + 1, l)
        n_l = <int> net.sizes[l]
        n_next = <int> net.sizes[l + 1]
        ld_l = <int> net.ld[l]
        ld_next = <int> net.ld[l + 1]
        net.dmax[t * L + l] = 0
        for k in range(k0, k1):
            lo = _bound(net, l, k)
            hi = _bound(net, l, k + 1)
            # D^l[:, own] = D^{l+1} W^{l+1}[:, own]                         (BP2)
            if net.small[l + 1]:
                small_gemm_nn(net.small[l + 1], m, hi - lo, n_next,
                              <floating *> net.D[l + 1], ld_next,
                              <floating *> net.W[l + 1] + lo, n_l,
                              <floating *> net.D[l] + lo, ld_l)
            else:
                gemm_rowmajor(NoTrans, NoTrans, <int> m, <int> (hi - lo), n_next,
                              <floating> 1, <floating *> net.D[l + 1], ld_next,
                              <floating *> net.W[l + 1] + lo, n_l,
                              <floating> 0, <floating *> net.D[l] + lo, ld_l)
            # D^l (.)= f'(Z^l)
            net.dmax[t * L + l] = _max_nan(net.dmax[t * L + l], times_derivative(
                net.acts[l], <floating *> net.D[l] + lo, ld_l,
                <floating *> net.A[l] + lo, ld_l, m, hi - lo))
    _wait(net, t)                   # every delta and every maximum is written


cdef double _combined(double *part, Layers *net, Py_ssize_t l) noexcept nogil:
    cdef double m = 0
    cdef int t
    for t in range(net.T):
        m = _max_nan(m, part[t * net.L + l])
    return m


cdef inline double _input_bound(Layers *net, Py_ssize_t l, double xmax) noexcept nogil:
    """A bound on max |A^{l-1}|, the input of layer l."""
    if l == 1:
        return xmax
    if _bounded(net.acts[l - 1]):
        return 1.0
    return _combined(net.zmax, net, l - 1)    # relu, linear: |a| <= |z|


cdef bint _step_is_safe(Layers *net, int t, floating eta, floating decay,
                        double xmax, Py_ssize_t m) noexcept nogil:
    """Whether the SGD step of this mini-batch keeps everything finite.

    |(D^T A)_jk| <= m max|D| max|A|, so the updated weights are bounded by
    |decay| wbound + eta max|D| max|A|.  wbound is a running upper bound on
    max|W^l|, tightened by an exact scan only when it grows large.  Every
    thread computes the same answer from the same shared maxima (each keeps
    its own copy of the bounds); on success the bounds advance past the step."""
    cdef Py_ssize_t l, L = net.L, lo, hi, k
    cdef double limit = _limit(eta)
    cdef double amax, dmax, grad_bound
    cdef double *wb = net.wbound + t * L
    cdef double *bb = net.bbound + t * L
    cdef bint rescan = False
    for l in range(1, L):
        if not (_combined(net.zmax, net, l) <= limit
                and _combined(net.dmax, net, l) <= limit):
            return False        # NaN, inf or an absurd value
    for l in range(1, L):
        dmax = _combined(net.dmax, net, l)
        amax = _input_bound(net, l, xmax)
        grad_bound = dmax * amax
        if not (m * grad_bound <= limit):
            return False
        if not (fabs(decay) * wb[l] + eta * grad_bound <= limit
                and bb[l] + eta * dmax <= limit):
            rescan = True
    if rescan:
        # The bounds grew large: measure max |W^l| and max |b^l| exactly,
        # each thread over its own rows (no thread is updating yet).
        for l in range(1, L):
            lo = _bound(net, l, _first_block(net, t, l))
            hi = _bound(net, l, _first_block(net, t + 1, l))
            net.wscan[t * L + l] = 0
            net.bscan[t * L + l] = 0
            if hi > lo:
                net.wscan[t * L + l] = max_abs(<floating *> net.W[l] + lo * net.sizes[l - 1],
                                               (hi - lo) * net.sizes[l - 1])
                net.bscan[t * L + l] = max_abs(<floating *> net.b[l] + lo, hi - lo)
        _wait(net, t)
        for l in range(1, L):
            wb[l] = _combined(net.wscan, net, l)
            bb[l] = _combined(net.bscan, net, l)
        _wait(net, t)               # the scans are read before anyone updates
    for l in range(1, L):
        dmax = _combined(net.dmax, net, l)
        amax = _input_bound(net, l, xmax)
        wb[l] = fabs(decay) * wb[l] + eta * dmax * amax
        bb[l] = bb[l] + eta * dmax
        if not (wb[l] <= limit and bb[l] <= limit):
            return False
    return True


cdef void _update(Layers *net, const floating *a0, floating eta, floating decay,
                  Py_ssize_t m, int t) noexcept nogil:
    """The SGD step on thread t's rows: BP3 and BP4, the update folded into
    the gemm."""
    cdef Py_ssize_t l, lo, hi, k
    cdef int n_in, ld_in, ld_out
    cdef floating alpha = -eta / m
    cdef const floating *a_in
    cdef const void *table[SMALL_ROWS]
    cdef const void **rows_in = NULL
    cdef const void **rows_next = NULL
    for l in range(1, net.L):
        n_in = <int> net.sizes[l - 1]
        ld_in = <int> net.ld[l - 1]
        ld_out = <int> net.ld[l]
        a_in = a0 if l == 1 else <floating *> net.A[l - 1]
        if net.small[l]:
            rows_in = _small_rows(net, t, l, table, a_in, ld_in, m)
            # layer 1's kernel also fetches the inputs of a later mini-batch
            # (see _train), in the thread's first block
            rows_next = net.x_next + t * net.x_rows_ld if l == 1 else NULL
        for k in range(_first_block(net, t, l), _first_block(net, t + 1, l)):
            lo = _bound(net, l, k)
            hi = _bound(net, l, k + 1)
            # W^l[own] <- decay W^l[own] - (eta/m) (D^l[:, own])^T A^{l-1}  (BP4)
            if net.small[l]:
                small_gemm_tn(net.small[l], m, hi - lo, n_in, alpha,
                              <floating *> net.D[l] + lo, ld_out,
                              rows_in, decay, <floating *> net.W[l] + lo * n_in, n_in,
                              rows_next, net.x_next_count
                              if rows_next != NULL and k == _first_block(net, t, l) else 0)
            else:
                gemm_rowmajor(Trans, NoTrans, <int> (hi - lo), n_in, <int> m,
                              alpha, <floating *> net.D[l] + lo, ld_out,
                              a_in, ld_in,
                              decay, <floating *> net.W[l] + lo * n_in, n_in)
            # b^l[own] <- b^l[own] - (eta/m) column sums of D^l[:, own]     (BP3)
            bias_update(<floating *> net.b[l] + lo, <floating *> net.D[l] + lo,
                        ld_out, m, hi - lo, alpha, <floating> 1)


cdef int _train(Layers *net, int t, int cost, const RowTables *rows,
                const Py_ssize_t *order, Py_ssize_t n, Py_ssize_t batch_size,
                floating eta, floating decay, double xmax, Py_ssize_t check_every,
                Py_ssize_t *done, int *stop) noexcept nogil:
    """Thread t's part of one epoch: the mini-batches order[k : k + batch_size],
    k = 0, b, 2b, ..., of the samples in rows.

    Returns STATUS_OK, STATUS_DIVERGED (the offending mini-batch not
    applied) or STATUS_INTERRUPTED (a Python signal handler raised; the
    exception is set).  *done counts the mini-batches applied.  Every
    check_every mini-batches thread 0 takes the GIL to let Python handle
    signals (Ctrl-C) and tells the others whether to stop.

    Consecutive mini-batches alternate between two sets of activations A^l,
    targets and maxima (`parity`), so that a thread can start the next
    mini-batch while another still reads the last one's in its update: the
    barriers a mini-batch needs are those inside _forward and _backward,
    besides _step_is_safe's when it rescans and _interrupted's.  (A network
    without hidden layers has none in _forward, so there the targets'
    gather, shared between the threads, ends with one.)"""
    cdef Py_ssize_t start = 0, m, m_next, r0, r1, s, since_look = 0, L = net.L
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[L - 1]
    cdef int parity = 0, T = net.T
    cdef floating *a0 = <floating *> net.inputs[t]
    cdef const void **x_rows = NULL
    cdef const void **x_next = NULL
    # the inputs are read in place where they are of the network's dtype
    cdef bint x_in_place
    if floating is float:
        x_in_place = rows.x_single
    else:
        x_in_place = not rows.x_single
    if net.small[1]:
        x_rows = net.x_rows + t * net.x_rows_ld
        x_next = net.x_next + t * net.x_rows_ld
        if not x_in_place:
            # inputs of the other dtype are converted into this thread's
            # copy: the small kernels read its rows, which stay where they are
            for s in range(min(batch_size, n)):
                x_rows[s] = a0 + s * n_in
    cdef floating *y
    cdef Layers view = net[0]      # this thread's: the current set of buffers
    while start < n:
        m = batch_size if start + batch_size <= n else n - start
        view.A = net.A + parity * L
        view.zmax = net.zmax + parity * T * L
        view.dmax = net.dmax + parity * T * L
        y = <floating *> net.targets[parity]
        # Each thread gathers the whole mini-batch's inputs for itself (its
        # products read every row, and reading a row from the data set costs
        # less than reading it from another core's cache), after its last use
        # of the previous one; or, for the small kernels, points at them
        # where they lie (those of its dtype).  The targets are gathered in
        # shares.
        if x_rows != NULL and x_in_place:
            for s in range(m):
                x_rows[s] = rows.x[order[start + s]]
            # On one thread, BP4's kernel fetches the inputs of the
            # mini-batch after next as it goes (those of the next one are
            # then in L2 already; on W1 this ran about 2% faster than
            # fetching the next one's).  On several, the threads fetch the
            # next one's while they wait at the barriers instead: on an AMD
            # EPYC (Zen 3, AVX2), 14 alternating pairs of one-epoch W1 fits
            # on two threads took medians 0.159 s against 0.165 in float64
            # and 0.085 against 0.088 in float32 (one thread: 0.190 against
            # 0.182 and 0.096 against 0.091, the other way round).
            m_next = 0 if T > 1 else max(0, min(batch_size, n - start - m - batch_size))
            for s in range(m_next):
                x_next[s] = rows.x[order[start + m + batch_size + s]]
            view.x_next_count = m_next
        else:
            gather_rows(a0, rows.x, order + start, rows.x_single, m, n_in)
        r0 = (m * t) // T
        r1 = (m * (t + 1)) // T
        gather_rows(y + r0 * n_out, rows.y, order + start + r0, rows.y_single,
                    r1 - r0, n_out)
        if view.x_next_count == 0 or start == 0:
            # the barriers fetch the next mini-batch's inputs (on several
            # threads: on one, BP4 fetches those of the one after next)
            _fetch_next(&net.ahead[t], rows, order, start, m, n, batch_size, n_in)
        if L == 2:
            _wait(&view, t)
        _forward(&view, a0, m, t)
        _backward(&view, cost, y, m, t)
        if not _step_is_safe(&view, t, eta, decay, xmax, m):
            return STATUS_DIVERGED
        _update(&view, a0, eta, decay, m, t)
        start += m
        parity = 1 - parity
        if t == 0:
            done[0] += 1
        if _interrupted(net.barrier, net.sense, t, stop, &since_look, check_every):
            return STATUS_INTERRUPTED
    return STATUS_OK


cdef inline void _fetch_next(fbp_prefetch *ahead, const RowTables *rows,
                             const Py_ssize_t *order, Py_ssize_t start, Py_ssize_t m,
                             Py_ssize_t n, Py_ssize_t batch_size,
                             Py_ssize_t n_in) noexcept nogil:
    """Point a thread's cursor at the inputs of the mini-batch after
    order[start : start + m], which the thread then fetches into its L2
    cache at this mini-batch's barriers instead of idling."""
    fbp_prefetch_start(ahead, rows.x, order + start + m, min(batch_size, n - start - m),
                       n_in * (sizeof(float) if rows.x_single else sizeof(double)))


cdef struct RowTables:
    const void **x        # x[i]: sample i's n_0 inputs
    const void **y        # y[i]: its n_L targets
    int x_single          # the inputs are float32 (else float64)
    int y_single          # the same for the targets


cdef class Samples:
    """A training set as two tables of row pointers, read where it lies.

    Sample i's input is the n_in values at x[i] and its target the n_out
    values at y[i], float32 or float64 whatever the network's dtype (the
    gather converts).  Made by matrix_samples (the rows of two matrices)
    or pair_samples (the book's list of (x, y) column vectors, none of them
    copied).  Holds a reference to every array it points into."""
    cdef RowTables rows
    cdef readonly Py_ssize_t n, n_in, n_out
    cdef list keep
    # For data given as a list of pairs: each pair's sample number, to
    # follow the pairs through a shuffle of the list (see order_of).
    cdef public PairRows row_of
    cdef double xmax      # max |x|, once computed (-1 before)
    cdef bint ready       # the tables are filled (by matrix_samples or pair_samples)

    def __cinit__(self, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out):
        if n < 1 or n_in < 1 or n_out < 1:
            raise ValueError("no samples")
        self.xmax = -1.0
        self.ready = False
        self.n, self.n_in, self.n_out = n, n_in, n_out
        self.rows.x = <const void **> calloc(n, sizeof(void *))
        self.rows.y = <const void **> calloc(n, sizeof(void *))
        if not self.rows.x or not self.rows.y:
            raise MemoryError()
        self.keep = []

    def __dealloc__(self):
        free(self.rows.x)
        free(self.rows.y)

    cdef int _check_ready(self) except -1:
        if not self.ready:
            raise ValueError("an empty Samples: make one with matrix_samples or pair_samples")
        return 0

    cdef int _check_order(self, const Py_ssize_t[::1] order) except -1:
        """That the tables are filled and order names only samples in them."""
        cdef Py_ssize_t i
        self._check_ready()
        for i in range(order.shape[0]):
            if order[i] < 0 or order[i] >= self.n:
                raise IndexError("order names a sample that is not in data")
        return 0

    cdef double _max_abs(self, const void **table, int single, Py_ssize_t width) except? -1:
        """max |v| over every row of a table (NaN if any value is NaN).  A
        pass over all the data, bound by memory bandwidth: on two threads
        when there is much of it.  Where the rows are exactly the rows of
        one block of memory, in any order (the book's pairs are views of one
        matrix's rows, shuffled), the block is read from start to end."""
        cdef double part[2]
        cdef Py_ssize_t k = 0, lo = 0, hi = 0, n = self.n
        cdef int T = 2 if n * width >= SPLIT_MAX_ABS else 1
        self._check_ready()
        cdef const char *block = _rows_block(table, n, width * (4 if single else 8))
        if block != NULL:
            return _span_max_abs(block, n * width, single)
        part[0] = part[1] = 0.0
        with nogil, parallel(num_threads=T):
            k = threadid()
            T = openmp.omp_get_num_threads()    # the runtime may give fewer
            lo = (n * k) // T
            hi = (n * (k + 1)) // T
            if hi > lo:
                if single:
                    part[k] = fbp_rows_max_abs_f(<const float **> table + lo, hi - lo, width)
                else:
                    part[k] = fbp_rows_max_abs_d(<const double **> table + lo, hi - lo, width)
        return _max_nan(part[0], part[1])

    def max_abs(self):
        """max |x| over every input (NaN if any is NaN), computed once: the
        arrays must not change while this Samples is in use."""
        if self.xmax < 0:
            self.xmax = self._max_abs(self.rows.x, self.rows.x_single, self.n_in)
        return self.xmax

    def max_abs_targets(self):
        """max |y| over every target (NaN if any is NaN)."""
        return self._max_abs(self.rows.y, self.rows.y_single, self.n_out)

    def order_of(self, pairs):
        """The sample numbers of the pairs of a list, in its order: the order
        in which to visit the samples after the list was shuffled."""
        if self.row_of is None:
            raise ValueError("these samples were not made from a list of pairs")
        return self.row_of.order(pairs)


cdef class PairRows:
    """Each pair's place in a list, looked up by the pair's identity: where
    the pairs of a shuffled list were when training started (the book's
    random.shuffle(training_data) moves the caller's tuples; fastbp follows
    them).  A hash table on the pairs' addresses; it holds the pairs, so
    that no address is reused while it lives.  A pair listed twice takes
    its last place (either is the same sample)."""
    cdef list pairs           # the pairs, kept alive
    cdef size_t *keys         # a pair's address; 0 marks an empty slot
    cdef Py_ssize_t *places
    cdef size_t mask
    cdef int shift            # 64 - log2(the table's size)
    cdef readonly Py_ssize_t n

    def __cinit__(self, pairs):
        cdef list items = list(pairs)   # a copy: the caller may change their list
        cdef Py_ssize_t i
        cdef size_t size = 16, k
        self.pairs = items
        self.n = len(items)
        self.shift = 64 - 4
        while size < 2 * <size_t> self.n:
            size *= 2
            self.shift -= 1
        self.keys = <size_t *> calloc(size, sizeof(size_t))
        self.places = <Py_ssize_t *> malloc(size * sizeof(Py_ssize_t))
        if not self.keys or not self.places:
            raise MemoryError()
        self.mask = size - 1
        for i in range(self.n):
            k = self._slot(<size_t> <void *> items[i])
            self.keys[k] = <size_t> <void *> items[i]
            self.places[k] = i

    def __dealloc__(self):
        free(self.keys)
        free(self.places)

    cdef inline size_t _slot(self, size_t key) noexcept nogil:
        """The slot holding key, or the empty slot where it would go
        (linear probing from Fibonacci hashing of the address: the top bits
        of its product with 2^64 / golden ratio)."""
        cdef size_t k = (<unsigned long long> key * 0x9E3779B97F4A7C15ULL) >> self.shift
        while self.keys[k] != 0 and self.keys[k] != key:
            k = (k + 1) & self.mask
        return k

    def order(self, pairs):
        """The place of each pair of a list, in its order, as an index array."""
        cdef list items = pairs if type(pairs) is list else list(pairs)
        cdef Py_ssize_t i, n = len(items)
        cdef size_t key, k
        out = np.empty(n, dtype=np.intp)
        cdef Py_ssize_t[::1] order = out
        for i in range(n):
            key = <size_t> <void *> items[i]
            k = self._slot(key)
            if self.keys[k] != key:
                raise ValueError("the list holds a pair that was not in it when "
                                 "training started")
            order[i] = self.places[k]
        return out


@cython.boundscheck(True)     # getrandbits is Python code: it could shrink x
def shuffle_like_random(list x, object getrandbits):
    """Shuffle the list x in place exactly as random.Random.shuffle does,
    given the bound getrandbits of the generator (a plain random.Random).

    random.shuffle swaps x[i] and x[j] for i = n-1 down to 1, j drawn by
    _randbelow(i + 1): getrandbits(k), k = (i + 1).bit_length(), repeated
    until the draw is at most i.  For k <= 32 a draw is the generator's next
    32-bit word shifted right by 32 - k.  Here the words come in blocks, one
    call getrandbits(32 * b) for the b swaps still to do: every swap takes
    at least one word, so no word is drawn that random.shuffle would not
    draw, and the generator ends in the same state.  getrandbits fills its
    result from the least significant word up, the first drawn lowest, so
    word p of a block is bytes 4p .. 4p+3 of its little-endian bytes.
    _book.shuffle checks the match before relying on it."""
    cdef Py_ssize_t n = len(x), i = n - 1, p, b
    cdef const unsigned char[::1] words
    cdef unsigned int w
    cdef Py_ssize_t r
    cdef int k = n.bit_length()     # (i + 1).bit_length(), i = n - 1 down to 1
    if n >= 0x80000000:
        raise ValueError("too many items to shuffle 32 bits at a time")
    while i >= 1:
        b = i
        words = getrandbits(32 * b).to_bytes(4 * b, "little")
        p = 0
        while p < b and i >= 1:
            while (<Py_ssize_t> 1 << (k - 1)) > i + 1:
                k -= 1
            w = (words[4 * p] | (<unsigned int> words[4 * p + 1] << 8)
                 | (<unsigned int> words[4 * p + 2] << 16)
                 | (<unsigned int> words[4 * p + 3] << 24))
            p += 1
            r = w >> (32 - k)
            if r <= i:
                x[i], x[r] = x[r], x[i]
                i -= 1
    return None


cdef int _real_kind(cnp.ndarray a) noexcept:
    """1 for float32, 0 for float64, -1 for any other dtype or byte order."""
    if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32 and cnp.PyArray_ISNOTSWAPPED(a):
        return 1
    if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT64 and cnp.PyArray_ISNOTSWAPPED(a):
        return 0
    return -1


def matrix_samples(cnp.ndarray X not None, cnp.ndarray Y not None):
    """The rows of X (n, n_0) and Y (n, n_L), C-contiguous float32 or float64."""
    cdef Py_ssize_t i, n = X.shape[0] if X.ndim == 2 else 0
    cdef int x_kind = _real_kind(X), y_kind = _real_kind(Y)
    if (X.ndim != 2 or Y.ndim != 2 or Y.shape[0] != n or x_kind < 0 or y_kind < 0
            or not cnp.PyArray_IS_C_CONTIGUOUS(X) or not cnp.PyArray_IS_C_CONTIGUOUS(Y)
            or not cnp.PyArray_ISALIGNED(X) or not cnp.PyArray_ISALIGNED(Y)):
        raise ValueError("X and Y must be aligned C-contiguous float matrices "
                         "with one row per sample")
    cdef Samples data = Samples(n, X.shape[1], Y.shape[1])
    cdef char *x = <char *> cnp.PyArray_DATA(X)
    cdef char *y = <char *> cnp.PyArray_DATA(Y)
    cdef Py_ssize_t x_step = X.strides[0], y_step = Y.strides[0]
    data.rows.x_single, data.rows.y_single = x_kind, y_kind
    for i in range(n):
        data.rows.x[i] = x + i * x_step
        data.rows.y[i] = y + i * y_step
    data.keep = [X, Y]
    data.ready = True
    return data


cdef int _column_kind(object v, Py_ssize_t n) noexcept:
    """The real kind of v (see _real_kind) when v is an aligned contiguous
    array of shape (n, 1) or (n,); -1 otherwise."""
    if not cnp.PyArray_Check(v):
        return -1
    cdef cnp.ndarray a = <cnp.ndarray> v
    if a.ndim == 2:
        if a.shape[0] != n or a.shape[1] != 1:
            return -1
    elif a.ndim != 1 or a.shape[0] != n:
        return -1
    if not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a):
        return -1
    return _real_kind(a)


cdef extern from *:
    """
    /* The objects pair_samples reads of the pairs ahead of pairs[i]: the
     * tuple PAIR_AHEAD places on, its two arrays half as far, and their
     * shapes a quarter as far, each read by the stage before.  Shuffled,
     * the book's pairs lie all over the heap, and each of these is
     * otherwise a cache miss of its own.  Into L1 (__builtin_prefetch's
     * default), not L2 as FBP_PREFETCH: they are read a few pairs later
     * (with the L2 form, 50,000 shuffled pairs took medians of 13.5-13.6 ms
     * against 12.8-13.6 in three alternating pairs of processes). */
    #define PAIR_AHEAD 16
    static void fbp_prefetch_pairs(PyObject *list, Py_ssize_t i, Py_ssize_t n)
    {
        PyObject *t, *v;
        int k;
        if (i + PAIR_AHEAD < n)
            __builtin_prefetch(PyList_GET_ITEM(list, i + PAIR_AHEAD));
        if (i + PAIR_AHEAD / 2 < n) {
            t = PyList_GET_ITEM(list, i + PAIR_AHEAD / 2);
            if (PyTuple_CheckExact(t) && PyTuple_GET_SIZE(t) == 2) {
                __builtin_prefetch(PyTuple_GET_ITEM(t, 0));
                __builtin_prefetch(PyTuple_GET_ITEM(t, 1));
            }
        }
        if (i + PAIR_AHEAD / 4 < n) {
            t = PyList_GET_ITEM(list, i + PAIR_AHEAD / 4);
            if (PyTuple_CheckExact(t) && PyTuple_GET_SIZE(t) == 2)
                for (k = 0; k < 2; k++) {
                    v = PyTuple_GET_ITEM(t, k);
                    if (PyArray_Check(v))
                        __builtin_prefetch(PyArray_DIMS((PyArrayObject *)v));
                }
        }
    }
    """
    void fbp_prefetch_pairs(list pairs, Py_ssize_t i, Py_ssize_t n)


def pair_samples(object data, Py_ssize_t n_in, Py_ssize_t n_out):
    """The book's training data, a list (or other iterable) of tuples (x, y)
    of column vectors (n_in, 1) and (n_out, 1), without copying the
    arrays; or None when any pair
    does not have that form with finite values, all x of one dtype (float32
    or float64) and all y of one -- then stack them instead, which also
    says what is wrong."""
    cdef list pairs = data if type(data) is list else list(data)
    cdef Py_ssize_t i, n = len(pairs)
    if n == 0:
        return None
    cdef Samples samples = Samples(n, n_in, n_out)
    cdef object pair, x, y
    cdef int x_kind = -2, y_kind = -2
    cdef list keep = [None] * (2 * n)
    for i in range(n):
        fbp_prefetch_pairs(pairs, i, n)
        pair = pairs[i]
        if type(pair) is not tuple or len(<tuple> pair) != 2:
            return None
        x = (<tuple> pair)[0]
        y = (<tuple> pair)[1]
        if x_kind == -2:
            x_kind, y_kind = _column_kind(x, n_in), _column_kind(y, n_out)
            if x_kind < 0 or y_kind < 0:
                return None
        elif _column_kind(x, n_in) != x_kind or _column_kind(y, n_out) != y_kind:
            return None
        samples.rows.x[i] = cnp.PyArray_DATA(<cnp.ndarray> x)
        samples.rows.y[i] = cnp.PyArray_DATA(<cnp.ndarray> y)
        keep[2 * i] = x
        keep[2 * i + 1] = y
    samples.rows.x_single, samples.rows.y_single = x_kind, y_kind
    samples.keep = keep
    samples.row_of = PairRows(pairs)
    samples.ready = True
    if not (samples.max_abs() <= DBL_MAX and samples.max_abs_targets() <= DBL_MAX):
        return None
    return samples


cdef int _reraise() except -1:
    """Propagate the exception a signal handler left set."""
    return -1


def aligned_empty(shape, dtype):
    """np.empty(shape, dtype) starting on a cache line (CACHE_LINE bytes)."""
    dtype = np.dtype(dtype)
    cdef Py_ssize_t size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + CACHE_LINE, dtype=np.uint8)
    cdef size_t address = <size_t> raw.ctypes.data
    cdef Py_ssize_t skip = <Py_ssize_t> ((CACHE_LINE - address % CACHE_LINE) % CACHE_LINE)
    return raw[skip:skip + size].view(dtype).reshape(shape)


cdef inline bint _is_aligned(object arr):
    return (<size_t> arr.ctypes.data) % CACHE_LINE == 0


cdef class Exclusive:
    """``with Exclusive(lock, busy):`` holds ``lock`` (a threading.Lock) for
    the block, or raises ``busy`` at once if another call holds it.

    Compiled, so that no bytecode runs between taking the lock and entering
    the block, nor between leaving it and releasing the lock: Python raises
    a KeyboardInterrupt only between bytecodes, so a Ctrl-C can never leave
    the lock taken for good."""
    cdef object lock, busy

    def __cinit__(self, lock, busy):
        self.lock, self.busy = lock, busy

    def __enter__(self):
        if not self.lock.acquire(False):
            raise self.busy

    def __exit__(self, *exc_info):
        self.lock.release()
        return False


# Engine calls running now in this process (all of them, and the trainings
# among them) and the BLAS limit they share: see EngineThreads.
cdef Py_ssize_t _running_calls = 0
cdef Py_ssize_t _running_trainings = 0
cdef object _blas_limit = None


def running_calls():
    """(engine calls running now, the trainings among them)."""
    return _running_calls, _running_trainings


def blas_limited():
    """Whether a BLAS limit set by EngineThreads is in force."""
    return _blas_limit is not None


cdef class EngineThreads:
    """The context manager behind _training.engine_threads (which documents
    the rules): counts the engine calls running, keeps BLAS to one thread
    while any runs, and gives the call its thread count.

    calls_inside() gives the entering thread's list of the counts of the
    calls it is inside (this one's is appended on entry, removed on exit);
    cores, the count when nothing else decides; blas_threads() records
    BLAS's thread counts in an object whose limit() sets them to one and
    restore() puts them back; lock serialises limiting and restoring;
    note(exc) annotates a KeyboardInterrupt that ends a training.

    Compiled, like Exclusive: the counts change in C, where no
    KeyboardInterrupt can arrive (Python raises one only between
    bytecodes).  Only Python code before them (limiting BLAS) or after
    them (the note, restoring BLAS) can be interrupted, and the counts
    BLAS had are on record before anything is changed: a limit or restore
    cut short by one Ctrl-C is undone on the spot, by more, by the next call.
    A restore that fails with an error is reported as a RuntimeWarning and
    not retried."""
    cdef object requested, calls_inside, lock, blas_threads, note, mark, pending
    cdef list calls
    cdef Py_ssize_t cores
    cdef bint training

    def __cinit__(self, n_threads, bint training, calls_inside, Py_ssize_t cores,
                  lock, blas_threads, note):
        self.requested, self.training, self.cores = n_threads, training, cores
        self.calls_inside, self.lock, self.blas_threads, self.note = \
            calls_inside, lock, blas_threads, note

    def __enter__(self):
        global _running_calls, _running_trainings, _blas_limit
        mark = [self.requested]
        # the check and the claim with nothing between them that could let
        # another thread run (an allocation may start the garbage collector)
        if self.mark is not None:
            raise RuntimeError("this engine_threads context is already in use")
        self.mark = mark
        cdef object n = self.requested
        cdef list calls
        try:
            _warn_all([self._restore_if_idle()], None)  # one cut short earlier
            calls = self.calls_inside()
            if calls:
                outer = calls[len(calls) - 1][0]
                n = outer if n is None else min(n, outer)
            with self.lock:
                if _running_calls == 0:
                    if _blas_limit is not None:     # cut short meanwhile
                        self.pending = _restore_blas()  # (warned on exit)
                    _blas_limit = self.blas_threads()
                    _blas_limit.limit()
                if n is None:
                    n = 1 if _running_trainings else self.cores
                mark[0] = n
                calls.append(mark)
                # C only from here to the return
                self.calls = calls
                _running_calls += 1
                _running_trainings += self.training
        except BaseException as error:
            self.mark = None
            pending, self.pending = self.pending, None
            try:
                _warn_all([pending], error)
                _warn_all([self._restore_if_idle()], error)
            except BaseException:
                pass            # left to the next call; the first error is raised
            raise
        return n

    def __exit__(self, exc_type, exc, traceback):
        global _running_calls, _running_trainings
        cdef Py_ssize_t k
        cdef list calls = self.calls
        if self.mark is None:
            return False
        for k in range(len(calls) - 1, -1, -1):     # by identity: C only
            if calls[k] is self.mark:
                del calls[k]
                break
        self.mark = None
        self.calls = None
        _running_calls -= 1
        _running_trainings -= self.training
        pending, self.pending = self.pending, None
        try:
            try:
                failed = self._restore_if_idle()
            except KeyboardInterrupt as interrupt:
                try:
                    failed = self._restore_if_idle()    # finish what one Ctrl-C cut short
                except BaseException:
                    failed = None                       # left to the next call
                try:
                    _warn_all([pending, failed], interrupt)
                except BaseException:
                    pass
                raise
        finally:
            if (self.training and exc_type is not None
                    and issubclass(exc_type, KeyboardInterrupt)):
                self.note(exc)
        _warn_all([pending, failed], exc if exc_type is not None else None)
        return False

    cdef object _restore_if_idle(self):
        """Restore BLAS's thread counts if no call is running; the message of
        a restore that failed, or None."""
        if _running_calls == 0 and _blas_limit is not None:
            with self.lock:
                if _running_calls == 0 and _blas_limit is not None:
                    return _restore_blas()
        return None


cdef object _restore_blas():
    """Put BLAS's thread counts back; returns None, or a message if the
    restore raised an error.  An interrupt leaves it to be tried again; an
    error drops it (the caller warns, outside the lock): raising it would
    replace what the call itself raised, and retrying it would fail every
    later call."""
    global _blas_limit
    try:
        _blas_limit.restore()
    except Exception as exc:
        _blas_limit = None
        return (f"fastbp could not restore BLAS's thread counts: {exc!r}; "
                f"BLAS may be left on fewer threads")
    _blas_limit = None
    return None


cdef _warn_all(list messages, object raising):
    """One RuntimeWarning for the messages that are not None (if any); where
    warnings are errors and the call is already raising ``raising``, a note
    on that exception instead of replacing it."""
    cdef list given = [m for m in messages if m is not None]
    if given:
        _warn("; ".join(given), raising)


cdef _warn(str message, object raising):
    """A RuntimeWarning; where warnings are errors and the call is already
    raising ``raising``, a note on that exception instead of replacing it."""
    try:
        warnings.warn(message, RuntimeWarning)
    except Exception:
        if raising is None:
            raise
        if hasattr(raising, "add_note"):
            raising.add_note(message)


def copy_arrays(list targets, list values):
    """targets[k][...] = values[k] for every k, all or none: Python runs
    signal handlers (Ctrl-C) only between bytecodes, and once every pair is
    checked and converted the copies are made in C, so a KeyboardInterrupt
    comes before all of them or after all of them, never between.  The
    targets are C-contiguous writeable arrays."""
    cdef Py_ssize_t k, n = len(targets)
    if n != len(values):
        raise ValueError("as many targets as values are needed")
    cdef list ready = []
    for k in range(n):
        t = targets[k]
        if not (isinstance(t, np.ndarray) and t.flags.c_contiguous and t.flags.writeable):
            raise ValueError("the targets must be C-contiguous writeable arrays")
        v = np.ascontiguousarray(values[k], dtype=t.dtype)
        if v.shape != t.shape:
            raise ValueError(f"a value of shape {v.shape} for a target of shape {t.shape}")
        ready.append(v)
    for k in range(n):          # C only from here
        memcpy(cnp.PyArray_DATA(<cnp.ndarray> targets[k]),
               cnp.PyArray_DATA(<cnp.ndarray> ready[k]),
               <size_t> cnp.PyArray_NBYTES(<cnp.ndarray> targets[k]))


cdef tuple _byte_span(cnp.ndarray a):
    """[first, last + 1) of the bytes a non-empty array reaches, as numbers
    (numpy.lib.array_utils.byte_bounds, from its data, shape and strides)."""
    cdef size_t lo = <size_t> cnp.PyArray_DATA(a), hi = lo
    cdef Py_ssize_t extent
    cdef int d
    for d in range(a.ndim):
        extent = (a.shape[d] - 1) * a.strides[d]
        if extent < 0:
            lo -= <size_t> (-extent)
        else:
            hi += <size_t> extent
    return lo, hi + <size_t> a.itemsize


def overlapping_pair(list arrays):
    """(i, j), i < j, for two of the arrays whose bytes overlap (the same
    array twice, or views of one buffer), else None.  Like
    numpy.may_share_memory, it compares the spans the arrays reach, sorted:
    if any two spans overlap, two neighbours in that order do.  An empty
    array overlaps nothing."""
    cdef cnp.ndarray a
    spans = sorted([(_byte_span(a), k) for k, a in enumerate(arrays) if a.size])
    for ((_, end), i), (((start, _), j)) in zip(spans, spans[1:]):
        if start < end:
            return min(i, j), max(i, j)
    return None


# In the epoch loop, a narrow layer's products (feedforward, BP4, and BP2
# through its weights) are the small kernels of csrc/fastbp_small_gemm.c,
# for mini-batches of 8 to 32 samples, on processors with AVX-512 or AVX2; the first
# layer's read each mini-batch's inputs where they lie.  There a
# mini-batch's copy, BLAS's packing of its operands and a BLAS call's fixed
# cost are a good part of what the products cost.  Measured on 2 cores,
# alternating epochs in one process ([784, h, 10], Fashion-MNIST): on W1
# (h = 30, batch 10, 50,000 samples), with the first layer's products alone
# on the kernels, SciPy's dgemm in their place took 1.07-1.19 times the
# kernels' median epoch (1.12-1.14 on one thread), and in float32 SciPy's
# sgemm 2.1 times (2.6 on one thread: its packing copies took about as long
# as its products); the output layer's on the kernels too took another
# 2-11% off the epoch (16 pairs on 2 threads: float64 1.11, float32 1.09).
# On 10,000 samples, with batches of 10 and 32, dgemm took 1.07-1.58 times
# the kernels' epoch up to h = 128 but 0.93 at h = 192; sgemm 1.16-2.4 times
# up to h = 512.  In float64, batches of 1, 2 or 4 took up to 40% longer
# with the kernels' first build (a sample's row is then read for too few of
# W's rows).  The widths below keep a margin from where BLAS won.  The
# AVX2 variant, on a 2-core AMD EPYC (Zen 3) without AVX-512, 10,000
# samples, 5 alternating pairs of epochs: with batches of 10, BLAS took
# 1.15-1.21 times the kernels' epoch at h = 64 and 96 in float64 and
# 1.30-1.74 at h = 64 to 384 in float32 (one run at h = 256: 0.97); with
# batches of 16 to 32, float32 at h = 128 and 256 went either way from run
# to run (0.89 to 1.28), float64 at h = 30 and 64 1.02-1.31.
SMALL_BATCH_MIN = 8
SMALL_BATCH_MAX = 32
SMALL_WIDTH_MAX = {"float64": 96, "float32": 384}
# The kernels' variant the epoch loop takes: FBP_SMALL_AVX512 or
# FBP_SMALL_AVX2, the best this processor runs; 0 where it runs neither.
SMALL_VARIANT = fbp_small_gemm_available()
SMALL_GEMM = SMALL_VARIANT != 0
SMALL_VARIANTS = {"avx512": FBP_SMALL_AVX512, "avx2": FBP_SMALL_AVX2}


def _variants_run(dict codes, int best):
    """The names in codes (name: variant code, best first) of the variants
    a processor whose best is `best` runs: every code up to it."""
    return [name for name, code in codes.items() if code <= best]


cdef int _variant_code(object variant, dict codes, int default, int best,
                       str what) except -1:
    """The code of `what`'s variant named `variant` (codes: name to code),
    or with None the default one, if the processor runs it: every code up
    to best."""
    if variant is None:
        if default not in codes.values() or default > best:
            raise ValueError(f"this processor runs none of the variants of the {what}")
        return default
    if variant not in codes:
        raise ValueError(f"no {what} named {variant!r}; there are {sorted(codes)}")
    if codes[variant] > best:
        raise ValueError(f"this processor does not run the {variant} variant of the {what}")
    return codes[variant]


def _small_variants():
    """The names of the kernels' variants this processor runs, best first
    (for the tests: every one of them is checked)."""
    return _variants_run(SMALL_VARIANTS, SMALL_VARIANT)


cdef int _small_variant(object variant) except -1:
    """The code of a variant of the small kernels by name (None: the epoch
    loop's), if this processor runs it."""
    return _variant_code(variant, SMALL_VARIANTS, SMALL_VARIANT, SMALL_VARIANT,
                         "small kernels")


def small_layers(sizes, Py_ssize_t batch_size, dtype):
    """For each layer l = 1 .. L-1, whether the epoch loop computes its
    products (feedforward, BP4, and BP2 through W^l) with the small kernels,
    for this network, batch size and dtype (float32 or float64); layer 1's
    read the inputs in place."""
    cdef Py_ssize_t l
    ok = (SMALL_GEMM and SMALL_BATCH_MIN <= batch_size <= min(SMALL_BATCH_MAX, SMALL_ROWS))
    widest = SMALL_WIDTH_MAX[np.dtype(dtype).name]
    return tuple(bool(ok and sizes[l] <= widest) for l in range(1, len(sizes)))


cdef const void **_row_table(const floating[:, :] X, const Py_ssize_t[::1] rows,
                             object keep) except NULL:
    """Pointers to the rows X[rows[0]], X[rows[1]], ... (in an array kept in
    the list keep), for the test twins of the kernels that take a table of
    rows: each row of X must be contiguous, wherever it lies."""
    cdef Py_ssize_t s
    if rows.shape[0] == 0 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError("the kernels take at least one row of at least one value")
    _row_ld(X.strides, sizeof(floating))
    table = np.empty(rows.shape[0], dtype=np.uintp)
    keep.append(table)
    cdef size_t[::1] t = table
    for s in range(rows.shape[0]):
        if not 0 <= rows[s] < X.shape[0]:
            raise IndexError(f"row {rows[s]} of {X.shape[0]}")
        t[s] = <size_t> &X[rows[s], 0]
    return <const void **> &t[0]


def _small_gemm_nt(const floating[:, :] X, const Py_ssize_t[::1] rows,
                   const floating[:, ::1] W, variant=None):
    """Test twin of the small kernel Z = A W^T: X[rows] W^T, the rows read
    in place (X and W both float32 or both float64).  variant: "avx512" or
    "avx2" (default: the epoch loop's)."""
    cdef int code = _small_variant(variant)
    keep = []
    cdef const void **A = _row_table(X, rows, keep)
    if not SMALL_GEMM or W.shape[0] == 0 or W.shape[1] != X.shape[1]:
        raise ValueError("the small kernel Z = A W^T does not take these arrays on this machine")
    Z = np.empty((rows.shape[0], W.shape[0]),
                 dtype=np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] out = Z
    with nogil:
        small_gemm_nt(code, out.shape[0], out.shape[1], W.shape[1], A, &W[0, 0], W.shape[1],
                      &out[0, 0], out.shape[1])
    return Z


def _small_gemm_tn(double alpha, const floating[:, ::1] D, const floating[:, :] X,
                   const Py_ssize_t[::1] rows, double beta, floating[:, ::1] W,
                   variant=None):
    """Test twin of the small kernel W <- beta W + alpha D^T A: with X[rows]
    as A, in place (fetching no later rows: a prefetch changes no result)."""
    cdef int code = _small_variant(variant)
    keep = []
    cdef const void **A = _row_table(X, rows, keep)
    if (not SMALL_GEMM or D.shape[0] != rows.shape[0] or D.shape[1] != W.shape[0]
            or W.shape[0] == 0 or W.shape[1] != X.shape[1]):
        raise ValueError("the small kernel W <- beta W + alpha D^T A does not take these "
                         "arrays on this machine")
    with nogil:
        small_gemm_tn(code, D.shape[0], W.shape[0], W.shape[1], <floating> alpha, &D[0, 0],
                      D.shape[1], A, <floating> beta, &W[0, 0], W.shape[1], NULL, 0)


def _small_gemm_nn(const floating[:, ::1] D, const floating[:, ::1] W, Py_ssize_t lo,
                   Py_ssize_t hi, floating[:, ::1] out, variant=None):
    """Test twin of the small kernel O = D W on a block of columns, as BP2
    takes it: out[:, lo:hi] = D W[:, lo:hi], no other column of out written."""
    cdef int code = _small_variant(variant)
    if (not SMALL_GEMM or D.shape[0] == 0 or D.shape[1] == 0 or W.shape[0] != D.shape[1]
            or out.shape[0] != D.shape[0] or out.shape[1] != W.shape[1]
            or not 0 <= lo < hi <= W.shape[1]):
        raise ValueError("the small kernel O = D W does not take these arrays on this machine")
    with nogil:
        small_gemm_nn(code, D.shape[0], hi - lo, D.shape[1], &D[0, 0], D.shape[1], &W[0, lo],
                      W.shape[1], &out[0, lo], out.shape[1])


cdef class _Buffers:
    """The Layers struct of one call, with the memory it points to.

    Activation buffers, the errors D^l (deltas, for backprop), and for the
    epoch loop (gather) each thread's copy of the mini-batch's inputs and the
    double-buffered targets, are NumPy arrays allocated once per call, each
    starting on a cache line; the C tables are freed with this object.  With
    aligned_params, weights and biases (which must be C-contiguous) that do
    not start on a cache line are replaced by aligned copies, which
    _copy_back() writes into the caller's arrays.  With small (and gather),
    small_layers' flags, the epoch loop takes the small kernels for the
    layers it names: decided from the batch size, never from a call's number
    of samples, so that an epoch cut into several calls trains exactly as
    one call does."""
    cdef Layers net
    cdef list keep      # the arrays the pointers point into
    cdef readonly list layers   # A^1 .. A^{L-1} as (rows, n_l) NumPy views
    # The parameters trained as copies: the caller's memory, the copy, bytes.
    cdef void **copy_to
    cdef void **copy_from
    cdef size_t *copy_bytes
    cdef int n_copies

    def __cinit__(self, list weights, list biases, object sizes, object acts,
                  Py_ssize_t rows, object dtype, bint deltas, bint gather=False,
                  int threads=1, bint aligned_params=False, object small=None):
        cdef Py_ssize_t L = len(sizes), l
        cdef int T = min(max(threads, 1), MAX_BLOCKS)
        # (read below without bounds checks)
        if len(acts) != L or len(weights) != L - 1 or len(biases) != L - 1:
            raise ValueError(f"{L} layer sizes need {L - 1} weights and biases and {L} "
                             f"activation codes, got {len(weights)}, {len(biases)}, "
                             f"{len(acts)}")
        self.keep = []
        self.n_copies = 0
        self.copy_to = <void **> calloc(2 * L, sizeof(void *))
        self.copy_from = <void **> calloc(2 * L, sizeof(void *))
        self.copy_bytes = <size_t *> calloc(2 * L, sizeof(size_t))
        self.net.L = L
        self.net.sizes = <Py_ssize_t *> malloc(L * sizeof(Py_ssize_t))
        self.net.acts = <int *> malloc(L * sizeof(int))
        self.net.W = <void **> calloc(L, sizeof(void *))
        self.net.b = <void **> calloc(L, sizeof(void *))
        self.net.A = <void **> calloc(2 * L, sizeof(void *))
        self.net.D = <void **> calloc(L, sizeof(void *))
        self.net.ld = <Py_ssize_t *> calloc(L, sizeof(Py_ssize_t))
        self.net.small = <int *> calloc(L, sizeof(int))
        self.net.nblocks = <Py_ssize_t *> calloc(L, sizeof(Py_ssize_t))
        self.net.bounds = <Py_ssize_t *> calloc(L * (MAX_BLOCKS + 1), sizeof(Py_ssize_t))
        self.net.zmax = <double *> calloc(2 * T * L, sizeof(double))
        self.net.dmax = <double *> calloc(2 * T * L, sizeof(double))
        self.net.wscan = <double *> calloc(T * L, sizeof(double))
        self.net.bscan = <double *> calloc(T * L, sizeof(double))
        self.net.wbound = <double *> calloc(T * L, sizeof(double))
        self.net.bbound = <double *> calloc(T * L, sizeof(double))
        self.net.barrier = <fbp_barrier *> calloc(1, sizeof(fbp_barrier))
        self.net.sense = <int *> calloc(T, sizeof(int))
        self.net.ahead = <fbp_prefetch *> calloc(T, sizeof(fbp_prefetch))
        if (not self.net.sizes or not self.net.acts or not self.net.W or not self.net.b
                or not self.net.A or not self.net.D or not self.net.ld or not self.net.small
                or not self.net.nblocks
                or not self.net.bounds
                or not self.net.zmax or not self.net.dmax or not self.net.wscan
                or not self.net.bscan or not self.net.wbound or not self.net.bbound
                or not self.net.barrier or not self.net.sense or not self.net.ahead
                or not self.copy_to or not self.copy_from or not self.copy_bytes):
            raise MemoryError()
        if aligned_params and overlapping_pair(weights + biases) is not None:
            aligned_params = False      # one copy per array would split it
        cdef Py_ssize_t align = CACHE_LINE // np.dtype(dtype).itemsize
        for l in range(L):
            self.net.sizes[l] = sizes[l]
            self.net.acts[l] = acts[l]
            self.net.small[l] = (SMALL_VARIANT if gather and small is not None and l > 0
                                 and small[l - 1] else 0)
        _make_blocks(&self.net, align)
        self.net.ld[0] = sizes[0]
        self.layers = []
        for l in range(1, L):
            self.net.ld[l] = _row_stride(sizes[l], self.net.nblocks[l] > 1, align)
            self.net.W[l] = self._param(weights[l - 1], aligned_params)
            self.net.b[l] = self._param(biases[l - 1], aligned_params)
            self.net.A[l] = self._array((rows, self.net.ld[l]), dtype)
            self.layers.append(self.keep[len(self.keep) - 1][:, :sizes[l]])
            if deltas:
                self.net.D[l] = self._array((rows, self.net.ld[l]), dtype)
            if gather:
                self.net.A[L + l] = self._array((rows, self.net.ld[l]), dtype)
        for l in range(T if gather else 0):
            self.net.inputs[l] = self._array((rows, sizes[0]), dtype)
        if L > 1 and self.net.small[1]:
            # Each thread's table on cache lines of its own: the tables are
            # written every mini-batch and read throughout its products.
            self.net.x_rows_ld = _row_stride(rows, True, CACHE_LINE // sizeof(void *))
            self.net.x_rows = <const void **> self._array((2 * T, self.net.x_rows_ld),
                                                          np.uintp)
            self.net.x_next = self.net.x_rows + T * self.net.x_rows_ld
        for l in range(2 if gather else 0):
            self.net.targets[l] = self._array((rows, sizes[L - 1]), dtype)
        _set_threads(&self.net, T)

    cdef void *_array(self, shape, dtype) except NULL:
        cdef object arr = aligned_empty(shape, dtype)
        self.keep.append(arr)
        return self._pointer(arr)

    cdef void *_param(self, object arr, bint aligned) except NULL:
        if not aligned or _is_aligned(arr):
            return self._pointer(arr)
        cdef object copy = aligned_empty(arr.shape, arr.dtype)
        copy[...] = arr
        self.keep.append(arr)           # written back into: kept alive until then
        self.keep.append(copy)
        self.copy_to[self.n_copies] = self._pointer(arr)
        self.copy_from[self.n_copies] = self._pointer(copy)
        self.copy_bytes[self.n_copies] = arr.nbytes
        self.n_copies += 1
        return self.copy_from[self.n_copies - 1]

    cdef void _copy_back(self) noexcept nogil:
        """Write the trained copies into the caller's weights and biases."""
        cdef int i
        for i in range(self.n_copies):
            memcpy(self.copy_to[i], self.copy_from[i], self.copy_bytes[i])

    cdef void *_pointer(self, object arr) except NULL:
        if arr.size == 0:
            raise ValueError("empty layer")
        return <void *> <size_t> arr.ctypes.data

    def __dealloc__(self):
        free(self.net.sizes)
        free(self.net.acts)
        free(self.net.W)
        free(self.net.b)
        free(self.net.A)
        free(self.net.D)
        free(self.net.ld)
        free(self.net.small)
        free(self.net.nblocks)
        free(self.net.bounds)
        free(self.net.zmax)
        free(self.net.dmax)
        free(self.net.wscan)
        free(self.net.bscan)
        free(self.net.wbound)
        free(self.net.bbound)
        free(self.net.barrier)
        free(self.net.sense)
        free(self.net.ahead)
        free(self.copy_to)
        free(self.copy_from)
        free(self.copy_bytes)


cdef int _epoch(Layers *net, int cost, const RowTables *rows, const Py_ssize_t *order,
                Py_ssize_t n, Py_ssize_t batch_size, floating eta, floating decay,
                double xmax, Py_ssize_t check_every, Py_ssize_t *done) noexcept nogil:
    """One epoch on net.T threads; returns the status of thread 0."""
    cdef Py_ssize_t l, L = net.L
    cdef int status, stop = 0, t = 0
    cdef int *statuses
    for l in range(1, L):
        net.wbound[l] = max_abs(<floating *> net.W[l], net.sizes[l] * net.sizes[l - 1])
        net.bbound[l] = max_abs(<floating *> net.b[l], net.sizes[l])
        for t in range(1, net.T):
            net.wbound[t * L + l] = net.wbound[l]
            net.bbound[t * L + l] = net.bbound[l]
    if net.T == 1:
        return _train(net, 0, cost, rows, order, n, batch_size, eta, decay, xmax,
                      check_every, done, &stop)
    statuses = <int *> malloc(net.T * sizeof(int))
    for t in range(net.T):
        statuses[t] = -1
    with parallel(num_threads=net.T):
        t = threadid()
        if openmp.omp_get_num_threads() == net.T:
            statuses[t] = _train(net, t, cost, rows, order, n, batch_size, eta, decay,
                                 xmax, check_every, done, &stop)
    if statuses[0] == -1:
        # The runtime gave fewer threads than asked: one does it all.
        _set_threads(net, 1)
        status = _train(net, 0, cost, rows, order, n, batch_size, eta, decay, xmax,
                        check_every, done, &stop)
    else:
        status = statuses[0]
    free(statuses)
    return status


cdef int _check_cost(int cost, object acts) except -1:
    """The costs the engine computes: the quadratic with any built-in output
    activation, the cross-entropy with a sigmoid output (BP1 is then
    delta^L = a^L - y; the Python layer refuses it with others)."""
    if cost == FBP_QUADRATIC:
        return 0
    if cost == FBP_CROSS_ENTROPY and acts[len(acts) - 1] == FBP_SIGMOID:
        return 0
    raise ValueError("the engine takes the quadratic cost, or the cross-entropy "
                     "with a sigmoid output layer")


cdef Py_ssize_t _epoch_arguments(Samples data, const Py_ssize_t[::1] order, object sizes,
                                 Py_ssize_t check_every) except -1:
    """Check that order names samples of data and that they fit the network;
    returns how many mini-batches to train between two looks for signals
    (check_every, or once an epoch when it is not positive)."""
    data._check_order(order)
    if data.n_in != sizes[0] or data.n_out != sizes[len(sizes) - 1]:
        raise ValueError("the samples do not fit the network's input and output layers")
    return check_every if check_every > 0 else order.shape[0]


def train_epoch(list weights, list biases, object sizes, object acts, int cost,
                Samples data not None, const Py_ssize_t[::1] order,
                Py_ssize_t batch_size, double eta, double decay,
                Py_ssize_t check_every=0, double xmax=-1.0, int threads=1):
    """Run one epoch of mini-batch SGD in place on weights and biases.

    weights[l] (n_{l+1} x n_l) and biases[l] (n_{l+1} values) must be
    C-contiguous arrays of one dtype, float32 or float64, the dtype of the
    arithmetic.  order lists the samples of data in the order to visit them.
    The whole epoch runs without the GIL, on `threads` OpenMP threads (at
    most BLOCKS; BLAS must then be single-threaded).  A call of many
    mini-batches trains cache-aligned copies of parameters that are not
    aligned and writes them back before returning, whatever the status.
    xmax, max |x| over the inputs, is computed when not given (pass it to
    save a pass over the data when running several epochs on it).

    Returns (status, mini-batches applied), status OK or DIVERGED; a
    KeyboardInterrupt (or any exception a signal handler raises) propagates
    with the mini-batches before it applied."""
    cdef Py_ssize_t n = order.shape[0], done = 0
    cdef int status = STATUS_OK
    _check_cost(cost, acts)
    if n == 0:
        return status, 0
    check_every = _epoch_arguments(data, order, sizes, check_every)
    if xmax < 0:
        xmax = data.max_abs()
    threads = max(1, min(threads, _BLOCKS))
    dtype = np.asarray(weights[0]).dtype
    cdef _Buffers buf = _Buffers(weights, biases, sizes, acts, min(batch_size, n), dtype,
                                 True, True, threads,
                                 n >= ALIGNED_COPY_MIN_BATCHES * batch_size,
                                 small_layers(sizes, batch_size, dtype))
    cdef Layers *net = &buf.net
    cdef float eta_f = <float> eta, decay_f = <float> decay
    if dtype == np.float32:
        with nogil:
            status = _epoch(net, cost, &data.rows, &order[0], n, batch_size, eta_f,
                            decay_f, xmax, check_every, &done)
            buf._copy_back()
    else:
        with nogil:
            status = _epoch(net, cost, &data.rows, &order[0], n, batch_size, eta, decay,
                            xmax, check_every, &done)
            buf._copy_back()
    if status == STATUS_INTERRUPTED:
        _reraise()
    return status, done


cdef inline void _copy(floating *dst, const floating *src,
                       Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(count):
        dst[k] = src[k]


cdef void _feedforward_chunk(Layers *net, const floating *x, floating *out,
                             Py_ssize_t n, Py_ssize_t chunk, Py_ssize_t c) noexcept nogil:
    """A^L of chunk c (rows c chunk .. (c + 1) chunk - 1) of the rows of x
    (n x n_0), into the same rows of out (n x n_L)."""
    cdef Py_ssize_t L = net.L, n_in = net.sizes[0], n_out = net.sizes[L - 1]
    cdef Py_ssize_t start = c * chunk, i
    cdef Py_ssize_t m = chunk if start + chunk <= n else n - start
    # the input rows are read where they are, in x
    _forward(net, x + start * n_in, m, 0)
    for i in range(m):
        _copy(out + (start + i) * n_out, <floating *> net.A[L - 1] + i * net.ld[L - 1], n_out)


# The rows of one feedforward chunk: few for a narrow first layer, whose
# products are cheap next to streaming the inputs; many for a wide one, whose
# products run faster the more rows they take.  Two threads, 20,000 rows of
# 784 inputs, [784, h, 10], float64 and float32 alike: for h = 10 and 30,
# 32 or 64 rows took 65-75% of the time of 512; for h = 64 and 100, 128 to
# 512 rows did best, and for h = 256, 512.
def feedforward_chunk(object sizes):
    """The rows per chunk that feedforward takes by default."""
    return 64 if sizes[1] <= 32 else 512


def feedforward(list weights, list biases, object sizes, object acts,
                const floating[:, ::1] X, int threads=1, Py_ssize_t chunk=0):
    """The network's output A^L for every row of X, as an n x n_L array.

    X is fed forward in chunks of `chunk` rows (0: feedforward_chunk(sizes)),
    shared out over `threads` threads (at most MAX_BLOCKS; BLAS must then be
    single-threaded) as each becomes free, each thread with buffers of its
    own.  A chunk is the same computation on any thread, so the result does
    not depend on their number."""
    cdef Py_ssize_t n = X.shape[0], n_chunks, c
    cdef Py_ssize_t L = len(sizes)
    cdef Py_ssize_t n_out = sizes[L - 1]
    out_arr = np.empty((n, n_out), dtype=np.asarray(X).dtype)
    if n == 0:
        return out_arr
    cdef floating[:, ::1] out = out_arr
    if chunk <= 0:
        chunk = feedforward_chunk(sizes)
    n_chunks = (n + chunk - 1) // chunk
    cdef int t = 0, T = <int> max(1, min(threads, n_chunks, MAX_BLOCKS))
    cdef list bufs = [_Buffers(weights, biases, sizes, acts, min(chunk, n),
                               out_arr.dtype, False) for _ in range(T)]
    cdef Layers *nets[MAX_BLOCKS]
    for t in range(T):
        nets[t] = &(<_Buffers> bufs[t]).net
    if T == 1:
        with nogil:
            for c in range(n_chunks):
                _feedforward_chunk(nets[0], &X[0, 0], &out[0, 0], n, chunk, c)
        return out_arr
    with nogil, parallel(num_threads=T):
        t = threadid()
        for c in prange(n_chunks, schedule="dynamic"):
            _feedforward_chunk(nets[t], &X[0, 0], &out[0, 0], n, chunk, c)
    return out_arr


def activations(list weights, list biases, object sizes, object acts,
                const floating[:, ::1] X):
    """The activations A^1 .. A^{L-1} of every layer for the rows of X, as a
    list of (n, n_l) arrays (for diagnostics; feedforward keeps only A^L)."""
    cdef Py_ssize_t n = X.shape[0], l
    cdef Py_ssize_t L = len(sizes)
    cdef _Buffers buf = _Buffers(weights, biases, sizes, acts, n,
                                 np.asarray(X).dtype, False)
    with nogil:
        _forward(&buf.net, &X[0, 0], n, 0)
    return buf.layers

def backprop(list weights, list biases, object sizes, object acts, int cost,
             const floating[:, ::1] X, const floating[:, ::1] Y):
    """Gradients of the batch-mean cost over all rows of X.

    Returns (nabla_b, nabla_w): lists of arrays shaped (n_l,) and
    (n_l, n_{l-1}), with nabla_w^l = (1/m) (D^l)^T A^{l-1}  (BP4) and
    nabla_b^l = (1/m) column sums of D^l  (BP3)."""
    cdef Py_ssize_t m = X.shape[0], l
    cdef Py_ssize_t L = len(sizes)
    cdef int n_out, n_in, ld_in, ld_out
    _check_cost(cost, acts)
    dtype = np.asarray(X).dtype
    cdef _Buffers buf = _Buffers(weights, biases, sizes, acts, m, dtype, True)
    cdef floating scale = <floating> (1.0 / m)
    nabla_w = [np.empty((sizes[l], sizes[l - 1]), dtype=dtype) for l in range(1, L)]
    nabla_b = [np.zeros(sizes[l], dtype=dtype) for l in range(1, L)]
    cdef floating[:, ::1] gw
    cdef floating[::1] gb
    cdef const floating *a_in
    with nogil:
        _forward(&buf.net, &X[0, 0], m, 0)
        _backward(&buf.net, cost, &Y[0, 0], m, 0)
    for l in range(1, L):
        gw = nabla_w[l - 1]
        gb = nabla_b[l - 1]
        n_out = <int> sizes[l]
        n_in = <int> sizes[l - 1]
        ld_in = <int> buf.net.ld[l - 1]
        ld_out = <int> buf.net.ld[l]
        a_in = &X[0, 0] if l == 1 else <floating *> buf.net.A[l - 1]
        with nogil:
            # nabla_w^l = (1/m) (D^l)^T A^{l-1}                           (BP4)
            gemm_rowmajor(Trans, NoTrans, n_out, n_in, <int> m,
                          scale, <floating *> buf.net.D[l], ld_out,
                          a_in, ld_in, <floating> 0, &gw[0, 0], n_in)
            # nabla_b^l = (1/m) column sums of D^l                        (BP3)
            bias_update(&gb[0], <floating *> buf.net.D[l], ld_out, m, n_out,
                        scale, <floating> 1)
    return nabla_b, nabla_w


# ---------------------------------------------------------------------------
# network.py's arithmetic, sample by sample (fastbp.network's SGD).
#
# The book's network.py computes with NumPy, one sample at a time, and sums
# the samples' gradients in order; csrc/fastbp_book.h lists its operations
# and says why fastbp.network repeats them exactly: a float64 rounding
# differs with the order of every sum, and training amplifies the
# difference.  np.dot of a matrix and a column vector is a BLAS dgemv call;
# the same call through SciPy's BLAS gives NumPy's bits where both are
# OpenBLAS builds with the same kernels (checked when this module loads:
# _dgemv_matches_numpy), and e^x is NumPy's own float64 exp loop, found in
# np.exp's loop table.
# A step writes new weights and biases beside the current ones (the
# caller's arrays and the call's own, in turn), which they replace only if
# every value is safe; the call writes the last current ones into the
# caller's arrays before it returns, whatever the status.  So a mini-batch
# is applied only as a whole, as in the engine above.  Threads share out
# each layer's neurons: the rows of W^l for the step, and for the
# feedforward of a wide layer (every thread computes a narrow one whole,
# and BP1-2 whole); every thread then reads its own rows of W^l only, and
# its own inputs and deltas.  Every sum is the same whatever the split.

ctypedef void (*_ufunc_loop)(char **, cnp.npy_intp *, cnp.npy_intp *, void *) noexcept nogil

cdef fbp_unary_loop _numpy_exp = NULL
cdef void *_numpy_exp_data = NULL


cdef _call_unary_loop(void *loop, void *data, double[::1] x, double[::1] out):
    cdef char *args[2]
    cdef cnp.npy_intp dims[1]
    cdef cnp.npy_intp steps[2]
    args[0] = <char *> &x[0]
    args[1] = <char *> &out[0]
    dims[0] = x.shape[0]
    steps[0] = steps[1] = sizeof(double)
    (<_ufunc_loop> loop)(args, dims, steps, data)


def _find_numpy_exp():
    """Point the book path at NumPy's float64 exp: the first of np.exp's
    'd->d' inner loops whose results equal np.exp's, bit for bit, on a
    probe over its whole range (NumPy picks the loop for the processor when
    it loads).  Returns whether one was found."""
    global _numpy_exp, _numpy_exp_data
    cdef cnp.ufunc exp
    cdef int i
    if type(np.exp) is not np.ufunc:
        return False
    exp = np.exp
    rng = np.random.default_rng(0)
    probe = np.concatenate([np.linspace(-746.0, 709.0, 20001),
                            rng.uniform(-40.0, 40.0, 20000),
                            rng.standard_normal(20000)])
    expected = np.exp(probe)
    out = np.empty_like(probe)
    for i in range(exp.ntypes):
        if (exp.types[2 * i] != cnp.NPY_DOUBLE or exp.types[2 * i + 1] != cnp.NPY_DOUBLE
                or exp.functions[i] == NULL):
            continue
        _call_unary_loop(<void *> exp.functions[i], exp.data[i], probe, out)
        if np.array_equal(out, expected):
            _numpy_exp = <fbp_unary_loop> <void *> exp.functions[i]
            _numpy_exp_data = exp.data[i]
            return True
    return False


cdef inline void _np_dot(char trans, int n_out, int n_in, const double *W,
                         const double *x, double *y) noexcept nogil:
    """np.dot(w, x) (trans 'T': y has n_out values) or np.dot(w.T, x) (trans
    'N': y has n_in values) for w, row-major n_out x n_in: the dgemv call
    NumPy makes for a matrix times a column vector.  Row-major w is the
    column-major n_in x n_out matrix w^T."""
    cdef int inc = 1
    cdef double one = 1.0, zero = 0.0
    memset(y, 0, (n_out if trans == b'T' else n_in) * sizeof(double))
    dgemv(&trans, &n_in, &n_out, &one, <double *> W, &n_in, <double *> x, &inc, &zero,
          y, &inc)


cdef _book_dgemv(char trans, const double[:, ::1] W, const double[::1] x):
    """_np_dot for NumPy arrays."""
    y = np.empty(W.shape[0] if trans == b'T' else W.shape[1])
    cdef double[::1] out = y
    _np_dot(trans, <int> W.shape[0], <int> W.shape[1], &W[0, 0], &x[0], &out[0])
    return y


def _dgemv_matches_numpy():
    """Whether the dgemv calls of the book's path (_np_dot) give np.dot's bits for a
    matrix times a column vector, as network.py multiplies (both are BLAS
    calls, NumPy's and SciPy's; the same kernels give the same bits), on
    shapes with every remainder of 4 and 8 and long columns."""
    rng = np.random.default_rng(1)
    for n_out, n_in in ((30, 784), (10, 30), (7, 5003), (2, 2), (13, 9), (100, 61)):
        W = rng.standard_normal((n_out, n_in))
        a = rng.random((n_in, 1))
        delta = rng.standard_normal((n_out, 1))
        if not (np.array_equal(_book_dgemv(b'T', W, a.ravel()), np.dot(W, a).ravel())
                and np.array_equal(_book_dgemv(b'N', W, delta.ravel()),
                                   np.dot(W.T, delta).ravel())):
            return False
    return True


# A layer's feedforward is shared out by rows of W^l only in blocks that
# start on a multiple of BOOK_ROW_ALIGN neurons: a multiple of 4, since
# OpenBLAS's dgemv works on 4 rows at a time (so a block's products are
# those of the whole np.dot, checked when this module loads:
# _dgemv_blocks_match_numpy), and of 8, a cache line of each sample's row
# of the shared A^l.
cdef Py_ssize_t BOOK_ROW_ALIGN = 8


def _dgemv_blocks_match_numpy():
    """Whether the dgemv of a block of rows of w that starts on a multiple
    of BOOK_ROW_ALIGN (and ends on one, or at the last row) gives the bits
    of those rows of the whole product: OpenBLAS computes each row's dot
    product alone, in groups of 4 rows and the same order whatever the
    group.  On shapes small enough that OpenBLAS never splits the call
    over its own threads, with every remainder of 4 rows."""
    rng = np.random.default_rng(2)
    cdef Py_ssize_t r0, r1, n_out
    for n_out, n_in in ((30, 300), (100, 90), (17, 500), (39, 230), (12, 700), (41, 7)):
        W = rng.standard_normal((n_out, n_in))
        a = rng.random(n_in)
        whole = _book_dgemv(b'T', W, a)
        for r0 in range(0, n_out, BOOK_ROW_ALIGN):
            for r1 in list(range(r0 + BOOK_ROW_ALIGN, n_out, BOOK_ROW_ALIGN)) + [n_out]:
                if not np.array_equal(_book_dgemv(b'T', W[r0:r1], a), whole[r0:r1]):
                    return False
    return True


cdef const double **_book_rows(const double[:, :] A, object keep) except NULL:
    """The rows of A in order as the book kernels take them (see _row_table)."""
    cdef const Py_ssize_t[::1] order = np.arange(A.shape[0], dtype=np.intp)
    return <const double **> _row_table[double](A, order, keep)


def _book_gemv(const double[:, ::1] W, const double[:, :] A, wide=None):
    """fbp_book_gemv for NumPy arrays: Z with Z[s] = np.dot(W, A[s]) for
    each row of A (W C-contiguous, its columns a multiple of 4 below 2048;
    each row of A contiguous, wherever it lies).  wide: the AVX-512 variant
    (default: where the processor has it)."""
    cdef bint use_wide = fbp_book_gemv_wide() if wide is None else wide
    if (not fbp_book_gemv_usable(W.shape[1]) or (use_wide and not fbp_book_gemv_wide())
            or A.shape[1] != W.shape[1]):
        raise ValueError("fbp_book_gemv does not take these arrays on this machine")
    Z = np.zeros((A.shape[0], W.shape[0]))
    cdef double[:, ::1] out = Z
    keep = []
    if A.shape[0] and W.shape[0]:
        fbp_book_gemv(&out[0, 0], out.shape[1], &W[0, 0], W.shape[0], W.shape[1],
                      _book_rows(A, keep), A.shape[0], use_wide)
    return Z


def _book_gemv_usable(Py_ssize_t n_in):
    """Whether fbp_book_gemv takes rows of n_in values on this processor."""
    return bool(fbp_book_gemv_usable(n_in))


def _book_gemv_wide():
    """Whether this processor runs fbp_book_gemv's AVX-512 variant."""
    return bool(fbp_book_gemv_wide())


def _book_gemv_matches_dgemv():
    """Whether fbp_book_gemv (the variant the engine uses here) gives the
    bits of one dgemv call per sample on one BLAS thread (_np_dot, the call
    np.dot makes): it repeats the summation order of OpenBLAS's x86-64
    kernels, so this says whether those are the kernels in use.  Every
    remainder of 4 rows, short and long rows, 1 to 11 samples (every way of
    cutting them into the kernel's groups), rows of A apart by more than
    their length, values spread over six orders of magnitude."""
    from threadpoolctl import threadpool_limits
    if not _book_gemv_usable(4):
        return False
    rng = np.random.default_rng(3)
    W_all = rng.standard_normal((30, 2044)) * 10.0 ** rng.uniform(-3, 3, (30, 2044))
    A_all = rng.random((11, 2052))
    with threadpool_limits(limits=1, user_api="blas"):
        for n_rows in (1, 2, 3, 4, 5, 6, 7, 9, 14, 16, 30):
            for n_in in (12, 784, 2044):
                W = np.ascontiguousarray(W_all[:n_rows, :n_in])
                A = A_all[:, 5:5 + n_in]
                for m in range(1, 12):
                    Z = _book_gemv(W, A[:m])
                    for s in range(m):
                        if not np.array_equal(Z[s], _book_dgemv(b'T', W, A[s])):
                            return False
    return True


# Whether train_epoch_book can run and give network.py's bits: NumPy's exp
# loop was found and SciPy's dgemv computes as np.dot does (else the book's
# layers train in the mini-batch form); whether it may share a layer's
# feedforward out among threads by blocks of rows (else it runs on one); and
# whether its feedforward may compute a mini-batch's products in one pass
# over W (fbp_book_gemv; else one dgemv call per sample); whether those
# products use AVX-512's registers, and which registers the weight step
# sums in (the same bits either way).
BOOK_ARITHMETIC = _find_numpy_exp() and _dgemv_matches_numpy()
BOOK_BLOCKS = BOOK_ARITHMETIC and _dgemv_blocks_match_numpy()
BOOK_GEMV = BOOK_ARITHMETIC and _book_gemv_matches_dgemv()
BOOK_WIDE = bool(fbp_book_gemv_wide())
# fbp_book_weight_step's variants (csrc/fastbp_book.h) by name; BOOK_STEP is
# the best this processor runs, the one the book path takes.
BOOK_STEP_VARIANTS = {"avx512": FBP_BOOK_AVX512, "avx2": FBP_BOOK_AVX2,
                      "portable": FBP_BOOK_PORTABLE}
BOOK_STEP = fbp_book_step_variant()


def _book_step_variants():
    """The names of the weight step's variants this processor runs, best
    first."""
    return _variants_run(BOOK_STEP_VARIANTS, fbp_book_step_variant())


cdef struct BookLayers:
    # Layers l = 0 .. L-1 as in Layers; one row per sample of the mini-batch.
    Py_ssize_t L
    Py_ssize_t *sizes
    int cost              # FBP_QUADRATIC or FBP_CROSS_ENTROPY
    double decay          # the weights' factor 1-eta*(lmbda/n) (1 for network.py)
    # W[0][l] and b[0][l] are the caller's arrays, W[1][l] and b[1][l] the
    # call's own; a step writes the pair that is not current.
    double **W[2]         # W[k][l]: n_l x n_{l-1}
    double **b[2]         # b[k][l]: n_l
    # Thread t's views: A[t*L + l] is A^l (m rows, ld[l] apart), one array
    # that all threads share where layer l is split, else thread t's own;
    # A[t*L] is thread t's copy of the mini-batch's inputs where they must
    # be widened from float32 (and book_backprop's).  D[t*L + l] is
    # thread t's own delta^l (m x n_l), Y[t] its copy of the targets.
    double **A
    double **D
    double **Y
    Py_ssize_t *ld
    # tab[(t*L + l) * batch + s] points at row s of thread t's A^l, for the
    # kernels; those of A^0 at the inputs where they lie (_book_train)
    const double **tab
    Py_ssize_t batch
    bint *split           # split[l]: the threads share out layer l's feedforward
    bint *gemv            # gemv[l]: layer l's products by fbp_book_gemv (see BOOK_GEMV)
    int wide              # the AVX-512 variant of fbp_book_gemv
    int step              # fbp_book_weight_step's variant (BOOK_STEP)
    Py_ssize_t *rows      # rows[l*(MAX_BLOCKS+1) + t]: thread t's first neuron of layer l
    double *scratch       # thread t's scratch for -z and e^{-z}: 2 * widest values
    Py_ssize_t widest
    int T                 # threads
    int *ok               # ok[t]: thread t's part of the step is safe
    fbp_barrier *barrier
    int *sense            # sense[t]: thread t's side of the barrier
    fbp_prefetch *ahead   # ahead[t]: the rows thread t fetches while it waits


cdef inline bint _book_splits(Py_ssize_t n, Py_ssize_t T) noexcept nogil:
    """Whether T threads share out the feedforward of a layer of n neurons:
    at least BOOK_ROW_ALIGN neurons a thread."""
    return T > 1 and n >= BOOK_ROW_ALIGN * T


def book_threads(object sizes, int threads):
    """The threads train_epoch_book runs on when asked for `threads`: at
    most BLOCKS, and one where no layer is wide enough to share out (see
    _book_splits) or where the block premise does not hold (BOOK_BLOCKS)."""
    cdef Py_ssize_t T = max(1, min(threads, _BLOCKS)) if BOOK_BLOCKS else 1
    while T > 1 and not any(_book_splits(n, T) for n in list(sizes)[1:]):
        T -= 1
    return T


cdef void _book_partition(BookLayers *net, int T) noexcept nogil:
    """Share out each layer's neurons among T threads: split layers (see
    _book_splits) in aligned blocks, the others evenly (their feedforward
    is computed whole by every thread; their rows are shared out only for
    the step)."""
    cdef Py_ssize_t l, n, k, lo, previous
    net.T = T
    for l in range(net.L):
        n = net.sizes[l]
        net.split[l] = l > 0 and _book_splits(n, T)
        previous = 0
        for k in range(T + 1):
            lo = (n * k) // T
            if net.split[l] and 0 < k < T:
                lo = ((lo + BOOK_ROW_ALIGN // 2) // BOOK_ROW_ALIGN) * BOOK_ROW_ALIGN
                lo = min(max(lo, previous), n)
            net.rows[l * (MAX_BLOCKS + 1) + k] = lo
            previous = lo


cdef class _BookBuffers:
    """The BookLayers of one call, on book_threads(sizes, threads) threads,
    and the memory it points to (NumPy arrays allocated once per call)."""
    cdef BookLayers net
    cdef list keep
    cdef list A_arrays, D_arrays    # thread 0's A^0 .. A^{L-1} and delta^1 .. delta^{L-1}
    cdef object Y_array             # thread 0's targets

    def __cinit__(self, list weights, list biases, object sizes, Py_ssize_t rows,
                  int threads, bint one_blas_thread=False):
        cdef Py_ssize_t L = len(sizes), l
        cdef int k, t, T = book_threads(sizes, threads)
        cdef Py_ssize_t s
        self.keep = []
        self.net.L = L
        self.net.widest = max(sizes)
        self.net.sizes = <Py_ssize_t *> malloc(L * sizeof(Py_ssize_t))
        for k in range(2):
            self.net.W[k] = <double **> calloc(L, sizeof(double *))
            self.net.b[k] = <double **> calloc(L, sizeof(double *))
        self.net.A = <double **> calloc(T * L, sizeof(double *))
        self.net.D = <double **> calloc(T * L, sizeof(double *))
        self.net.Y = <double **> calloc(T, sizeof(double *))
        self.net.ld = <Py_ssize_t *> calloc(L, sizeof(Py_ssize_t))
        self.net.batch = rows
        self.net.tab = <const double **> calloc(T * L * rows, sizeof(double *))
        self.net.split = <bint *> calloc(L, sizeof(bint))
        self.net.gemv = <bint *> calloc(L, sizeof(bint))
        self.net.rows = <Py_ssize_t *> calloc(L * (MAX_BLOCKS + 1), sizeof(Py_ssize_t))
        self.net.ok = <int *> calloc(T, sizeof(int))
        self.net.barrier = <fbp_barrier *> calloc(1, sizeof(fbp_barrier))
        self.net.sense = <int *> calloc(T, sizeof(int))
        self.net.ahead = <fbp_prefetch *> calloc(T, sizeof(fbp_prefetch))
        if (not self.net.sizes or not self.net.W[0] or not self.net.W[1]
                or not self.net.b[0] or not self.net.b[1] or not self.net.A
                or not self.net.D or not self.net.Y or not self.net.ld or not self.net.tab
                or not self.net.split or not self.net.gemv or not self.net.rows
                or not self.net.ok
                or not self.net.barrier or not self.net.sense or not self.net.ahead):
            raise MemoryError()
        for l in range(L):
            self.net.sizes[l] = sizes[l]
            self.net.gemv[l] = (one_blas_thread and l > 0 and BOOK_GEMV
                                and fbp_book_gemv_usable(sizes[l - 1]))
        self.net.wide = BOOK_WIDE and fbp_book_gemv_wide()
        self.net.step = min(BOOK_STEP, fbp_book_step_variant())
        _book_partition(&self.net, T)
        for l in range(L):
            # each thread's block of a split layer's row on its own lines
            self.net.ld[l] = _row_stride(sizes[l], self.net.split[l], BOOK_ROW_ALIGN)
            if l > 0:
                self.net.W[0][l] = <double *> <size_t> weights[l - 1].ctypes.data
                self.net.b[0][l] = <double *> <size_t> biases[l - 1].ctypes.data
                self.net.W[1][l] = self._array((sizes[l], sizes[l - 1]))
                self.net.b[1][l] = self._array((sizes[l],))
        self.A_arrays, self.D_arrays = [], [None]
        for t in range(T):
            for l in range(L):
                if t == 0 or not self.net.split[l]:
                    self.net.A[t * L + l] = self._array((rows, self.net.ld[l]))
                    if t == 0:
                        self.A_arrays.append(self.keep[len(self.keep) - 1][:, :sizes[l]])
                else:
                    self.net.A[t * L + l] = self.net.A[l]
                if l > 0:
                    self.net.D[t * L + l] = self._array((rows, sizes[l]))
                    if t == 0:
                        self.D_arrays.append(self.keep[len(self.keep) - 1])
            self.net.Y[t] = self._array((rows, sizes[L - 1]))
            if t == 0:
                self.Y_array = self.keep[len(self.keep) - 1]
            for l in range(L):
                for s in range(rows):
                    self.net.tab[(t * L + l) * rows + s] = self.net.A[t * L + l] + s * self.net.ld[l]
        self.net.scratch = self._array((T, 2 * self.net.widest))
        fbp_barrier_init(self.net.barrier, T)

    cdef double *_array(self, shape) except NULL:
        arr = aligned_empty(shape, np.float64)
        self.keep.append(arr)
        return <double *> <size_t> arr.ctypes.data

    cdef void _copy_back(self, int current) noexcept nogil:
        """Write the current weights and biases into the caller's arrays."""
        cdef Py_ssize_t l
        if current == 0:
            return
        for l in range(1, self.net.L):
            memcpy(self.net.W[0][l], self.net.W[1][l],
                   self.net.sizes[l] * self.net.sizes[l - 1] * sizeof(double))
            memcpy(self.net.b[0][l], self.net.b[1][l], self.net.sizes[l] * sizeof(double))

    def __dealloc__(self):
        free(self.net.sizes)
        free(self.net.W[0])
        free(self.net.W[1])
        free(self.net.b[0])
        free(self.net.b[1])
        free(self.net.A)
        free(self.net.D)
        free(self.net.Y)
        free(self.net.ld)
        free(self.net.tab)
        free(self.net.split)
        free(self.net.gemv)
        free(self.net.rows)
        free(self.net.ok)
        free(self.net.barrier)
        free(self.net.sense)
        free(self.net.ahead)


cdef inline void _book_wait(BookLayers *net, int t) noexcept nogil:
    fbp_barrier_wait_prefetching(net.barrier, &net.sense[t], &net.ahead[t])


cdef void _book_forward(BookLayers *net, int cur, int t, Py_ssize_t m,
                        double *scratch) noexcept nogil:
    """Rows 0 .. m-1 of every A^l as network.py's feedforward(a) computes
    them, with the weights W[cur]: thread t's block of a split layer (then
    every thread waits for the others), every other layer whole."""
    cdef Py_ssize_t l, s, L = net.L, r0, r1, ld_out
    cdef int n_in
    cdef const double **a_in
    cdef double *a_out
    for l in range(1, L):
        n_in = <int> net.sizes[l - 1]
        r0 = net.rows[l * (MAX_BLOCKS + 1) + t] if net.split[l] else 0
        r1 = net.rows[l * (MAX_BLOCKS + 1) + t + 1] if net.split[l] else net.sizes[l]
        a_in = net.tab + (t * L + l - 1) * net.batch
        a_out = net.A[t * L + l] + r0
        ld_out = net.ld[l]
        if r1 > r0:
            if net.gemv[l]:
                # z = np.dot(w, a), rows r0 .. r1-1, for every sample at once
                fbp_book_gemv(a_out, ld_out, net.W[cur][l] + r0 * n_in, r1 - r0, n_in,
                              a_in, m, net.wide)
            for s in range(m):
                if not net.gemv[l]:
                    # z = np.dot(w, a): rows r0 .. r1-1 of it
                    _np_dot(b'T', <int> (r1 - r0), n_in, net.W[cur][l] + r0 * n_in,
                            a_in[s], a_out + s * ld_out)
                # a = sigmoid(z + b)
                fbp_book_sigmoid(a_out + s * ld_out, net.b[cur][l] + r0, r1 - r0, scratch,
                                 scratch + net.widest, _numpy_exp, _numpy_exp_data)
        if net.split[l]:
            _book_wait(net, t)      # the next layer reads all of A^l


cdef void _book_backward(BookLayers *net, int cur, int t, Py_ssize_t m) noexcept nogil:
    """Rows 0 .. m-1 of every delta^l (BP1, BP2) into thread t's own D, from
    the A^l and thread t's targets."""
    cdef Py_ssize_t l, s, L = net.L
    cdef int n_in, n_out
    cdef double *out
    for s in range(m):
        n_out = <int> net.sizes[L - 1]
        # delta = cost.delta(z, a, y)                                     (BP1)
        fbp_book_output_error(net.cost, net.D[t * L + L - 1] + s * n_out,
                              net.A[t * L + L - 1] + s * net.ld[L - 1],
                              net.Y[t] + s * n_out, n_out)
        for l in range(L - 2, 0, -1):
            n_in = <int> net.sizes[l + 1]      # this product's inputs: delta^{l+1}
            n_out = <int> net.sizes[l]
            out = net.D[t * L + l] + s * n_out
            # np.dot(w.T, delta), W^{l+1} being n_in x n_out              (BP2)
            _np_dot(b'N', n_in, n_out, net.W[cur][l + 1],
                    net.D[t * L + l + 1] + s * n_in, out)
            fbp_book_times_derivative(out, net.A[t * L + l] + s * net.ld[l], n_out)


cdef bint _book_step(BookLayers *net, int cur, double eta, Py_ssize_t m,
                     int t) noexcept nogil:
    """Thread t's rows of BP3, BP4 and the step decay w - (eta/m) nabla_w for
    every layer, written into the weights and biases that are not current.
    Returns whether every new value is finite and within 1e300."""
    cdef Py_ssize_t l, L = net.L, n_out, n_in, r0, r1
    cdef double c = eta / m
    cdef bint ok = True
    for l in range(1, L):
        n_out = net.sizes[l]
        n_in = net.sizes[l - 1]
        r0 = net.rows[l * (MAX_BLOCKS + 1) + t]
        r1 = net.rows[l * (MAX_BLOCKS + 1) + t + 1]
        if r1 == r0:
            continue
        ok &= fbp_book_weight_step(net.W[1 - cur][l] + r0 * n_in, net.W[cur][l] + r0 * n_in,
                                   net.D[t * L + l] + r0, n_out,
                                   net.tab + (t * L + l - 1) * net.batch, m, r1 - r0, n_in,
                                   net.decay, c, LIMIT_DOUBLE, net.step)
        ok &= fbp_book_bias_step(net.b[1 - cur][l] + r0, net.b[cur][l] + r0,
                                 net.D[t * L + l] + r0, n_out, m, r1 - r0, c, LIMIT_DOUBLE)
    return ok


cdef int _book_train(BookLayers *net, int t, const RowTables *rows, const Py_ssize_t *order,
                     Py_ssize_t n, Py_ssize_t batch_size, double eta,
                     Py_ssize_t check_every, Py_ssize_t *done, int *current,
                     int *stop) noexcept nogil:
    """Thread t's part of the epoch: the mini-batches order[k : k + batch_size]
    in turn.  Each thread reads the whole mini-batch (float64 inputs where
    they lie, float32 ones widened into its own copy), feeds it forward
    (its block of each split layer, the other layers whole) and back (all
    of it), then steps its share of each layer's neurons; every thread
    decides alike whether the step is applied (flipping its own note of
    which weights are current, left in *current by thread 0).  Statuses as
    _train's."""
    cdef Py_ssize_t start = 0, m, s, since_look = 0, L = net.L
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[L - 1]
    cdef int cur = 0, T = net.T, u
    cdef bint ok
    cdef double *scratch = net.scratch + 2 * net.widest * t
    cdef const double **x_tab = net.tab + t * L * net.batch
    while start < n:
        m = batch_size if start + batch_size <= n else n - start
        if rows.x_single:
            # float32 inputs, widened into this thread's copy (x_tab points there)
            gather_rows(net.A[t * L], rows.x, order + start, rows.x_single, m, n_in)
        else:
            # float64 inputs are read where they lie
            for s in range(m):
                x_tab[s] = <const double *> rows.x[order[start + s]]
        gather_rows(net.Y[t], rows.y, order + start, rows.y_single, m, n_out)
        _fetch_next(&net.ahead[t], rows, order, start, m, n, batch_size, n_in)
        _book_forward(net, cur, t, m, scratch)
        _book_backward(net, cur, t, m)
        net.ok[t] = _book_step(net, cur, eta, m, t)
        _book_wait(net, t)          # every row of the step is written
        ok = True
        for u in range(T):
            ok = ok and net.ok[u]
        if not ok:
            if t == 0:
                current[0] = cur
            return STATUS_DIVERGED
        cur = 1 - cur
        start += m
        if t == 0:
            done[0] += 1
            current[0] = cur
        if _interrupted(net.barrier, net.sense, t, stop, &since_look, check_every):
            return STATUS_INTERRUPTED
    return STATUS_OK


cdef int _book_epoch(BookLayers *net, const RowTables *rows, const Py_ssize_t *order,
                     Py_ssize_t n, Py_ssize_t batch_size, double eta,
                     Py_ssize_t check_every, Py_ssize_t *done, int *current) noexcept nogil:
    """One epoch on net.T threads; returns the status of thread 0."""
    cdef int t = 0, stop = 0
    cdef int statuses[MAX_BLOCKS]
    if net.T > 1:
        statuses[0] = -1
        with parallel(num_threads=net.T):
            t = threadid()
            if openmp.omp_get_num_threads() == net.T:
                statuses[t] = _book_train(net, t, rows, order, n, batch_size, eta,
                                          check_every, done, current, &stop)
        if statuses[0] != -1:
            return statuses[0]
        # The runtime gave fewer threads than asked: one does it all.
        _book_partition(net, 1)
        fbp_barrier_init(net.barrier, 1)
    return _book_train(net, 0, rows, order, n, batch_size, eta, check_every, done,
                       current, &stop)


def train_epoch_book(list weights, list biases, object sizes, int cost,
                     Samples data not None, const Py_ssize_t[::1] order,
                     Py_ssize_t batch_size, double eta, double decay=1.0,
                     Py_ssize_t check_every=0, int threads=1, bint one_blas_thread=False):
    """One epoch of network.py's SGD in place, rounded as network.py rounds
    (see csrc/fastbp_book.h): sigmoid layers, float64, the quadratic cost
    (FBP_QUADRATIC), or network2.py's with the cross-entropy cost
    (FBP_CROSS_ENTROPY) and the weights' factor decay = 1-eta*(lmbda/n).

    weights[l] (n_{l+1} x n_l) and biases[l] (n_{l+1} values) must be
    C-contiguous float64 arrays that share no memory, and every layer at
    least 2 neurons wide (np.dot takes other routes for a single row or
    column).  Without the GIL, on book_threads(sizes, threads) OpenMP
    threads (BLAS must then be single-threaded); the result does not depend
    on the number.  one_blas_thread: BLAS is held to one thread for the
    call, as np.dot then computes: a mini-batch's feedforward products may
    be computed in one pass over W (fbp_book_gemv, see BOOK_GEMV), which
    gives the bits of a one-thread dgemv call (OpenBLAS shares large
    products out over its threads, summing a few rows in another order).
    Returns (status, mini-batches applied) as train_epoch does."""
    cdef Py_ssize_t n = order.shape[0], done = 0
    cdef int status, current = 0
    _check_book(weights, biases, sizes, cost)
    if n == 0:
        return STATUS_OK, 0
    check_every = _epoch_arguments(data, order, sizes, check_every)
    cdef _BookBuffers buf = _BookBuffers(weights, biases, sizes, min(batch_size, n),
                                         threads, one_blas_thread)
    buf.net.cost = cost
    buf.net.decay = decay
    with nogil:
        status = _book_epoch(&buf.net, &data.rows, &order[0], n, batch_size, eta,
                             check_every, &done, &current)
        buf._copy_back(current)
    if status == STATUS_INTERRUPTED:
        _reraise()
    return status, done


def book_backprop(list weights, list biases, object sizes, int cost,
                  const double[:, ::1] X, const double[:, ::1] Y=None):
    """For each row x of X, the activations a^1 .. a^L of network.py's
    feedforward(x), and with the targets Y the errors delta^1 .. delta^L of
    its backprop(x, y), rounded as network.py rounds them (the gradients
    are then delta and delta a^T: products, exact).  Returns (activations,
    deltas): lists of (n, n_l) arrays, deltas None without Y."""
    _check_book(weights, biases, sizes, cost)
    cdef Py_ssize_t n = X.shape[0], L = len(sizes)
    if n == 0 or X.shape[1] != sizes[0] or (
            Y is not None and (Y.shape[0] != n or Y.shape[1] != sizes[L - 1])):
        raise ValueError("X (n, n_0) and Y (n, n_L) do not fit the network")
    cdef _BookBuffers buf = _BookBuffers(weights, biases, sizes, n, 1)
    cdef bint backward = Y is not None
    buf.net.cost = cost
    buf.A_arrays[0][...] = X
    if backward:
        buf.Y_array[...] = Y
    with nogil:
        _book_forward(&buf.net, 0, 0, n, buf.net.scratch)
        if backward:
            _book_backward(&buf.net, 0, 0, n)
    return ([a.copy() for a in buf.A_arrays[1:]],
            [d.copy() for d in buf.D_arrays[1:]] if backward else None)


cdef _check_book(list weights, list biases, object sizes, int cost):
    """What the book's path needs of its arguments (see train_epoch_book)."""
    cdef Py_ssize_t L = len(sizes), l
    if not BOOK_ARITHMETIC:
        raise RuntimeError("the book's arithmetic is not available here: NumPy's exp "
                           "loop was not found, or NumPy's BLAS computes otherwise")
    if min(sizes) < 2:
        raise ValueError("every layer must have at least 2 neurons")
    if len(weights) != L - 1 or len(biases) != L - 1:
        raise ValueError("one weight matrix and one bias vector per layer")
    for l in range(1, L):
        if (weights[l - 1].shape != (sizes[l], sizes[l - 1])
                or biases[l - 1].size != sizes[l]
                or not weights[l - 1].flags.c_contiguous
                or not biases[l - 1].flags.c_contiguous):
            raise ValueError("weights and biases must be C-contiguous, in the layers' shapes")
    if cost != FBP_QUADRATIC and cost != FBP_CROSS_ENTROPY:
        raise ValueError("unknown cost code")
    if any(w.dtype != np.float64 for w in weights + biases):
        raise TypeError("the book's arithmetic is float64")
    if overlapping_pair(weights + biases) is not None:
        raise ValueError("weights and biases must not share memory")


# ---------------------------------------------------------------------------
# Python twins of the C kernels, used by the tests and by the slow paths.

cdef Py_ssize_t _row_ld(Py_ssize_t *strides, size_t item) except -1:
    """The row stride, in values, of a matrix whose rows are each contiguous
    (a column slice of a wider array, say), for the element-wise twins."""
    if strides[1] != <Py_ssize_t> item or strides[0] % <Py_ssize_t> item:
        raise ValueError("each row must be contiguous, the rows whole values apart")
    return strides[0] // <Py_ssize_t> item


def _activate(int act, floating[:, :] A, const floating[::1] b):
    """A <- f(A + b) in place; returns max |z|.  Rows may lie apart, here
    and in the next two twins (a column slice of a wider array)."""
    cdef floating r
    cdef Py_ssize_t lda = _row_ld(A.strides, sizeof(floating))
    with nogil:
        r = activate(act, &A[0, 0], lda, &b[0], A.shape[0], A.shape[1])
    return r


def _times_derivative(int act, floating[:, :] D, const floating[:, :] A):
    """D <- D * f'(z), f' taken from A = f(z); returns max |D|."""
    cdef floating r
    cdef Py_ssize_t ldd = _row_ld(D.strides, sizeof(floating))
    cdef Py_ssize_t lda = _row_ld(A.strides, sizeof(floating))
    with nogil:
        r = times_derivative(act, &D[0, 0], ldd, &A[0, 0], lda, D.shape[0], D.shape[1])
    return r


def _output_error(int cost, int act, floating[:, :] D, const floating[:, :] A,
                  const floating[:, :] Y):
    """D <- BP1's delta^L; returns max |D|."""
    cdef floating r
    cdef Py_ssize_t ldd = _row_ld(D.strides, sizeof(floating))
    cdef Py_ssize_t lda = _row_ld(A.strides, sizeof(floating))
    cdef Py_ssize_t ldy = _row_ld(Y.strides, sizeof(floating))
    with nogil:
        r = output_error(cost, act, &D[0, 0], ldd, &A[0, 0], lda, &Y[0, 0], ldy,
                         D.shape[0], D.shape[1])
    return r


def _bias_update(floating[::1] b, const floating[:, ::1] D, floating alpha, floating beta):
    """b <- beta b + alpha (column sums of D)."""
    with nogil:
        bias_update(&b[0], &D[0, 0], D.shape[1], D.shape[0], D.shape[1], alpha, beta)


def _book_exp(const double[::1] x):
    """e^x by the exp loop of the book's path (NumPy's own)."""
    if _numpy_exp == NULL:
        raise RuntimeError("NumPy's exp loop was not found")
    out = np.empty(x.shape[0])
    if x.shape[0]:
        _call_unary_loop(<void *> _numpy_exp, _numpy_exp_data, np.array(x), out)
    return out


def _book_sigmoid(double[::1] z, const double[::1] b):
    """z <- 1.0/(1.0 + e^{-(z + b)}) in place, as the book's path computes it."""
    if b.shape[0] != z.shape[0] or z.shape[0] == 0:
        raise ValueError("z and b must have the same length")
    if _numpy_exp == NULL:
        raise RuntimeError("NumPy's exp loop was not found")
    scratch = np.empty(2 * z.shape[0])
    cdef double[::1] s = scratch
    with nogil:
        fbp_book_sigmoid(&z[0], &b[0], z.shape[0], &s[0], &s[z.shape[0]],
                         _numpy_exp, _numpy_exp_data)


def _book_output_error(int cost, double[::1] delta, const double[::1] a,
                       const double[::1] y):
    """delta <- (a - y) * (a*(1 - a)) (quadratic cost) or a - y (cross-entropy)."""
    if not delta.shape[0] == a.shape[0] == y.shape[0] or delta.shape[0] == 0:
        raise ValueError("delta, a and y must have the same length")
    with nogil:
        fbp_book_output_error(cost, &delta[0], &a[0], &y[0], delta.shape[0])


def _book_times_derivative(double[::1] delta, const double[::1] a):
    """delta <- delta * (a*(1 - a))."""
    if delta.shape[0] != a.shape[0] or delta.shape[0] == 0:
        raise ValueError("delta and a must have the same length")
    with nogil:
        fbp_book_times_derivative(&delta[0], &a[0], delta.shape[0])


def _book_weight_step(double[:, ::1] W_new, const double[:, ::1] W,
                      const double[:, ::1] D, const double[:, :] A, double c,
                      double decay=1.0, double limit=LIMIT_DOUBLE, variant=None):
    """W_new <- decay W - c (sum over the rows k of D and A, in order, of
    D[k]^T A[k]); returns whether every new weight is within limit.  Each
    row of A must be contiguous, wherever it lies (a column slice of a wider
    array, say).  variant: "avx512", "avx2" or "portable" (default: the best
    this processor runs, as the engine)."""
    cdef int ok
    cdef int code = _variant_code(variant, BOOK_STEP_VARIANTS, BOOK_STEP,
                                  fbp_book_step_variant(), "weight step")
    if (W_new.shape[0] != W.shape[0] or W_new.shape[1] != W.shape[1] or D.shape[1] != W.shape[0]
            or A.shape[1] != W.shape[1] or A.shape[0] != D.shape[0] or D.shape[0] == 0):
        raise ValueError("W_new, W (n_out x n_in), D (m x n_out) and A (m x n_in) do not fit")
    keep = []
    cdef const double **rows = _book_rows(A, keep)
    with nogil:
        ok = fbp_book_weight_step(&W_new[0, 0], &W[0, 0], &D[0, 0], D.shape[1], rows,
                                  D.shape[0], W.shape[0], W.shape[1], decay, c, limit, code)
    return bool(ok)


def _book_bias_step(double[::1] b_new, const double[::1] b, const double[:, ::1] D,
                    double c, double limit=LIMIT_DOUBLE):
    """b_new <- b - c (the rows of D summed in order); returns whether every
    new bias is within limit."""
    cdef int ok
    if b_new.shape[0] != b.shape[0] or D.shape[1] != b.shape[0] or D.shape[0] == 0:
        raise ValueError("b_new, b (n) and D (m x n) do not fit")
    with nogil:
        ok = fbp_book_bias_step(&b_new[0], &b[0], &D[0, 0], D.shape[1], D.shape[0],
                                D.shape[1], c, limit)
    return bool(ok)


def _gather_rows(floating[:, ::1] out, Samples data not None,
                 const Py_ssize_t[::1] order):
    """out[i] <- the input of sample order[i] of data, in out's dtype."""
    data._check_order(order)
    if out.shape[0] != order.shape[0] or out.shape[1] != data.n_in:
        raise ValueError("out must have one row of n_in values per entry of order")
    with nogil:
        gather_rows(&out[0, 0], data.rows.x, &order[0], data.rows.x_single,
                    order.shape[0], data.n_in)


def _max_abs(const floating[::1] x):
    """max |x| (NaN if x holds a NaN; 0 for no values)."""
    if x.shape[0] == 0:
        return 0.0
    return _span_max_abs(<const char *> &x[0], x.shape[0], floating is float)


cdef double _span_max_abs(const char *x, Py_ssize_t n, int single) noexcept:
    """max |v| over n float32 (single) or float64 values from x, n > 0.  A
    pass bound by memory bandwidth: on two threads, each over half of the
    values, when they are many."""
    cdef double part[2]
    cdef Py_ssize_t lo, hi
    cdef int k = 0, T = 2 if n >= SPLIT_MAX_ABS else 1
    part[0] = part[1] = 0.0
    with nogil, parallel(num_threads=T):
        k = threadid()
        T = openmp.omp_get_num_threads()    # the runtime may give fewer
        lo = (n * k) // T
        hi = (n * (k + 1)) // T
        if hi > lo:
            if single:
                part[k] = fbp_max_abs_f(<const float *> x + lo, hi - lo)
            else:
                part[k] = fbp_max_abs_d(<const double *> x + lo, hi - lo)
    return _max_nan(part[0], part[1])


cdef const char *_rows_block(const void **table, Py_ssize_t n, Py_ssize_t row_bytes) except? NULL:
    """The start of the block of n * row_bytes bytes whose n rows are the
    rows of the table, each once, in any order; NULL where they are not."""
    cdef size_t first = <size_t> table[0], offset
    cdef Py_ssize_t i, row
    for i in range(1, n):
        if <size_t> table[i] < first:
            first = <size_t> table[i]
    cdef cnp.ndarray seen_array = np.zeros(n, dtype=np.uint8)
    cdef unsigned char *seen = <unsigned char *> cnp.PyArray_DATA(seen_array)
    for i in range(n):
        offset = <size_t> table[i] - first
        row = <Py_ssize_t> (offset // <size_t> row_bytes)
        if offset % <size_t> row_bytes != 0 or row >= n or seen[row]:
            return NULL
        seen[row] = 1
    return <const char *> first


def cost_total(int cost, const floating[:, ::1] A, const floating[:, ::1] Y):
    """The cost summed over the rows of A against the targets Y."""
    cdef double r = 0.0
    if A.shape[0] > 0:
        with nogil:
            r = cost_sum(cost, &A[0, 0], &Y[0, 0], A.shape[0], A.shape[1])
    return r


def argmax(const floating[:, ::1] A):
    """The index of the largest entry of each row (the first, on ties)."""
    out = np.empty(A.shape[0], dtype=np.intp)
    cdef Py_ssize_t[::1] o = out
    if A.shape[0] > 0:
        with nogil:
            argmax_rows(&o[0], &A[0, 0], A.shape[0], A.shape[1])
    return out

