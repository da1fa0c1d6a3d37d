# cython: language_level=3
"""The compiled backpropagation engine.

Mini-batch form of the four equations of backpropagation, one sample per row
(A^0 is m x n_0, W^l is n_l x n_{l-1} as in the book):

    Z^l = A^{l-1} (W^l)^T + 1 (b^l)^T,   A^l = f_l(Z^l)       feedforward
    D^L = grad_A C (.) f_L'(Z^L)                                 BP1
    D^l = (D^{l+1} W^{l+1}) (.) f_l'(Z^l)                        BP2
    dC/db^l = column sums of D^l                                 BP3
    dC/dW^l = (D^l)^T A^{l-1}                                    BP4

The matrix products are BLAS gemm calls (fastbp/_blas.pxd); the element-wise
work is C (csrc/fastbp_kernels.c).  The SGD step is folded into the BP4 gemm:
W^l <- decay W^l - (eta/m) (D^l)^T A^{l-1}, with beta = decay, so the
gradient is never stored.

A mini-batch is applied only as a whole.  Its forward pass and all of its
errors D^l are computed first (BP2 uses the weights before the step); then,
if every z and every delta is finite and a cheap bound shows that the step
cannot overflow, all layers are updated.  Otherwise nothing of that
mini-batch is applied and the caller is told.

Nothing here checks its arguments beyond what memory safety needs: the
Python layer (fastbp/_trainer.py) validates everything first.
"""
from libc.stdlib cimport malloc, free
from libc.math cimport fabs
from cpython.exc cimport PyErr_CheckSignals
from cython cimport floating

from ._blas cimport gemm_rowmajor, NoTrans, Trans
from ._kernels cimport (activate, times_derivative, output_error, bias_update,
                        gather_rows, max_abs, cost_sum, argmax_rows,
                        FBP_SIGMOID, FBP_TANH)

import numpy as np

# Statuses returned by train_epoch.
cdef enum Status:
    STATUS_OK = 0
    STATUS_DIVERGED = 1

OK = STATUS_OK
DIVERGED = STATUS_DIVERGED

# Weights, biases, z or deltas beyond this are taken as divergence: it keeps
# every product and sum of the update well inside the floating-point range.
cdef double LIMIT_DOUBLE = 1e300
cdef double LIMIT_FLOAT = 1e36


cdef inline double _limit(floating x) noexcept nogil:
    if floating is float:
        return LIMIT_FLOAT
    else:
        return LIMIT_DOUBLE


cdef inline bint _bounded(int act) noexcept nogil:
    """Whether |f(z)| <= 1 for every z (sigmoid, tanh)."""
    return act == FBP_SIGMOID or act == FBP_TANH


cdef struct Layers:
    # Layer l = 0 .. L-1; index 0 (the input) has no weights and no delta.
    Py_ssize_t L
    Py_ssize_t *sizes
    int *acts
    void **W          # W[l]: n_l x n_{l-1}
    void **b          # b[l]: n_l
    void **A          # A[l]: batch x n_l activations (A[0] the inputs)
    void **D          # D[l]: batch x n_l errors delta^l
    double *zmax      # max |z^l| over the last forward pass
    double *dmax      # max |delta^l| over the last backward pass


cdef void _forward(Layers *net, floating x, Py_ssize_t m) noexcept nogil:
    """A^l = f_l(A^{l-1} W^l^T + b^l) for l = 1 .. L-1, on m rows of A[0].

    (x only selects the float or double version.)"""
    cdef Py_ssize_t l
    cdef int n_out, n_in
    cdef floating *a_in
    cdef floating *a_out
    for l in range(1, net.L):
        n_out = <int> net.sizes[l]
        n_in = <int> net.sizes[l - 1]
        a_in = <floating *> net.A[l - 1]
        a_out = <floating *> net.A[l]
        # Z^l = A^{l-1} (W^l)^T
        gemm_rowmajor(NoTrans, Trans, <int> m, n_out, n_in,
                      <floating> 1, a_in, n_in, <floating *> net.W[l], n_in,
                      <floating> 0, a_out, n_out)
        # A^l = f(Z^l + 1 b^T), in place
        net.zmax[l] = activate(net.acts[l], a_out, <floating *> net.b[l], m, n_out)


cdef void _backward(Layers *net, int cost, const floating *Y,
                    Py_ssize_t m) noexcept nogil:
    """D^L by BP1, then D^l by BP2 for l = L-2 .. 1 (the input needs none)."""
    cdef Py_ssize_t l, L = net.L
    cdef int n_l, n_next
    net.dmax[L - 1] = output_error(cost, net.acts[L - 1], <floating *> net.D[L - 1],
                                   <floating *> net.A[L - 1], Y, m, net.sizes[L - 1])
    for l in range(L - 2, 0, -1):
        n_l = <int> net.sizes[l]
        n_next = <int> net.sizes[l + 1]
        # D^l = D^{l+1} W^{l+1}
        gemm_rowmajor(NoTrans, NoTrans, <int> m, n_l, n_next,
                      <floating> 1, <floating *> net.D[l + 1], n_next,
                      <floating *> net.W[l + 1], n_l,
                      <floating> 0, <floating *> net.D[l], n_l)
        # D^l (.)= f'(Z^l)
        net.dmax[l] = times_derivative(net.acts[l], <floating *> net.D[l],
                                       <floating *> net.A[l], m, n_l)


cdef bint _step_is_safe(Layers *net, floating eta, floating decay, double xmax,
                        double *wbound, double *bbound, Py_ssize_t m) noexcept nogil:
    """Whether the SGD step of this mini-batch keeps everything finite.

    |(D^T A)_jk| <= m max|D| max|A|, so the updated weights are bounded by
    |decay| wbound + eta max|D| max|A|.  wbound[l] is a running upper bound
    on max|W^l|, tightened by an exact scan only when it grows large.
    On success the bounds are advanced past the step."""
    cdef Py_ssize_t l
    cdef double limit = _limit(eta)
    cdef double amax, grad_bound, wnext, bnext
    for l in range(1, net.L):
        if not (net.zmax[l] <= limit and net.dmax[l] <= limit):
            return False        # NaN, inf or an absurd value
    for l in range(1, net.L):
        if l == 1:
            amax = xmax
        elif _bounded(net.acts[l - 1]):
            amax = 1.0
        else:
            amax = net.zmax[l - 1]
        grad_bound = net.dmax[l] * amax
        if not (m * grad_bound <= limit):
            return False
        wnext = fabs(decay) * wbound[l] + eta * grad_bound
        if not (wnext <= limit):
            wbound[l] = max_abs(<floating *> net.W[l], net.sizes[l] * net.sizes[l - 1])
            wnext = fabs(decay) * wbound[l] + eta * grad_bound
            if not (wnext <= limit):
                return False
        bnext = bbound[l] + eta * net.dmax[l]
        if not (bnext <= limit):
            bbound[l] = max_abs(<floating *> net.b[l], net.sizes[l])
            bnext = bbound[l] + eta * net.dmax[l]
            if not (bnext <= limit):
                return False
    for l in range(1, net.L):
        if l == 1:
            amax = xmax
        elif _bounded(net.acts[l - 1]):
            amax = 1.0
        else:
            amax = net.zmax[l - 1]
        wbound[l] = fabs(decay) * wbound[l] + eta * net.dmax[l] * amax
        bbound[l] = bbound[l] + eta * net.dmax[l]
    return True


cdef void _update(Layers *net, floating eta, floating decay,
                  Py_ssize_t m) noexcept nogil:
    """The SGD step, BP3 and BP4 with the update folded into the gemm."""
    cdef Py_ssize_t l
    cdef int n_out, n_in
    cdef floating alpha = -eta / m
    for l in range(1, net.L):
        n_out = <int> net.sizes[l]
        n_in = <int> net.sizes[l - 1]
        # W^l <- decay W^l - (eta/m) (D^l)^T A^{l-1}                   (BP4)
        gemm_rowmajor(Trans, NoTrans, n_out, n_in, <int> m,
                      alpha, <floating *> net.D[l], n_out,
                      <floating *> net.A[l - 1], n_in,
                      decay, <floating *> net.W[l], n_in)
        # b^l <- b^l - (eta/m) column sums of D^l                       (BP3)
        bias_update(<floating *> net.b[l], <floating *> net.D[l], m, n_out,
                    alpha, <floating> 1)


cdef int _train(Layers *net, int cost, const floating *X, const floating *Y,
                const Py_ssize_t *order, Py_ssize_t n, Py_ssize_t batch_size,
                floating eta, floating decay, double xmax, double *wbound,
                double *bbound, Py_ssize_t check_every,
                Py_ssize_t *done) except -1 nogil:
    """One epoch: the mini-batches order[k : k + batch_size], k = 0, b, 2b, ...

    Returns OK, or DIVERGED with the offending mini-batch not applied.
    *done counts the mini-batches applied.  Every check_every mini-batches
    the GIL is taken to let Python handle signals (Ctrl-C); an exception
    from a handler propagates with the last complete mini-batch applied."""
    cdef Py_ssize_t start, m, k = 0
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[net.L - 1]
    cdef floating *Ybatch = <floating *> net.A[net.L]   # spare buffer
    done[0] = 0
    start = 0
    while start < n:
        m = batch_size if start + batch_size <= n else n - start
        gather_rows(<floating *> net.A[0], X, order + start, m, n_in)
        gather_rows(Ybatch, Y, order + start, m, n_out)
        _forward(net, eta, m)
        _backward(net, cost, <const floating *> Ybatch, m)
        if not _step_is_safe(net, eta, decay, xmax, wbound, bbound, m):
            return STATUS_DIVERGED
        _update(net, eta, decay, m)
        start += m
        done[0] += 1
        k += 1
        if k == check_every:
            k = 0
            with gil:
                PyErr_CheckSignals()
    return STATUS_OK


cdef inline void _copy_rows(floating *dst, const floating *src,
                            Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(count):
        dst[k] = src[k]


cdef class _Buffers:
    """The Layers struct of one call, with the memory it points to.

    Activation and error buffers are NumPy arrays allocated once per call;
    the pointer tables are freed with this object."""
    cdef Layers net
    cdef list keep      # the arrays the pointers point into

    def __cinit__(self, list weights, list biases, object sizes, object acts,
                  Py_ssize_t rows, object dtype, bint with_deltas):
        cdef Py_ssize_t L = len(sizes), l
        self.keep = []
        self.net.L = L
        self.net.sizes = <Py_ssize_t *> malloc(L * sizeof(Py_ssize_t))
        self.net.acts = <int *> malloc(L * sizeof(int))
        self.net.W = <void **> malloc(L * sizeof(void *))
        self.net.b = <void **> malloc(L * sizeof(void *))
        self.net.A = <void **> malloc((L + 1) * sizeof(void *))
        self.net.D = <void **> malloc(L * sizeof(void *))
        self.net.zmax = <double *> malloc(L * sizeof(double))
        self.net.dmax = <double *> malloc(L * sizeof(double))
        if (not self.net.sizes or not self.net.acts or not self.net.W or not self.net.b
                or not self.net.A or not self.net.D or not self.net.zmax or not self.net.dmax):
            raise MemoryError()
        for l in range(L):
            self.net.sizes[l] = sizes[l]
            self.net.acts[l] = acts[l]
            self.net.zmax[l] = 0
            self.net.dmax[l] = 0
            self.net.W[l] = NULL
            self.net.b[l] = NULL
            self.net.D[l] = NULL
            self.net.A[l] = self._array((rows, sizes[l]), dtype)
            if l > 0:
                self.net.W[l] = self._pointer(weights[l - 1])
                self.net.b[l] = self._pointer(biases[l - 1])
                if with_deltas:
                    self.net.D[l] = self._array((rows, sizes[l]), dtype)
        # A[L]: a spare buffer shaped like the output (the targets of a batch)
        self.net.A[L] = self._array((rows, sizes[L - 1]), dtype)

    cdef void *_array(self, shape, dtype) except NULL:
        cdef object arr = np.empty(shape, dtype=dtype)
        self.keep.append(arr)
        return self._pointer(arr)

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
        free(self.net.zmax)
        free(self.net.dmax)


def train_epoch(list weights, list biases, object sizes, object acts, int cost,
                const floating[:, ::1] X, const floating[:, ::1] Y,
                const Py_ssize_t[::1] order, Py_ssize_t batch_size,
                double eta, double decay, Py_ssize_t check_every=0):
    """Run one epoch of mini-batch SGD in place on weights and biases.

    weights[l] (n_{l+1} x n_l) and biases[l] (n_{l+1} values) must be
    C-contiguous arrays of X's dtype; order lists the rows of X and Y in the
    order to visit them.  The whole epoch runs without the GIL.

    Returns (status, mini-batches applied), status OK or DIVERGED."""
    cdef Py_ssize_t n = order.shape[0], l, done = 0
    cdef Py_ssize_t L = len(sizes)
    cdef int status = STATUS_OK
    cdef floating eta_ = <floating> eta
    cdef floating decay_ = <floating> decay
    cdef double xmax
    cdef _Buffers buf = _Buffers(weights, biases, sizes, acts,
                                 min(batch_size, n), np.asarray(X).dtype, True)
    cdef double[::1] wbound = np.zeros(L)
    cdef double[::1] bbound = np.zeros(L)
    if n == 0:
        return status, 0
    for l in range(1, L):
        wbound[l] = max_abs(<floating *> buf.net.W[l], buf.net.sizes[l] * buf.net.sizes[l - 1])
        bbound[l] = max_abs(<floating *> buf.net.b[l], buf.net.sizes[l])
    if check_every <= 0:
        check_every = n        # once an epoch at least
    with nogil:
        xmax = max_abs(&X[0, 0], X.shape[0] * X.shape[1])
        status = _train(&buf.net, cost, &X[0, 0], &Y[0, 0], &order[0], n,
                        batch_size, eta_, decay_, xmax, &wbound[0], &bbound[0],
                        check_every, &done)
    return status, done


def feedforward(list weights, list biases, object sizes, object acts,
                const floating[:, ::1] X, Py_ssize_t chunk=512):
    """The network's output A^L for every row of X, as an n x n_L array."""
    cdef Py_ssize_t n = X.shape[0], start, m
    cdef Py_ssize_t L = len(sizes)
    cdef Py_ssize_t n_in = sizes[0], n_out = sizes[L - 1]
    out_arr = np.empty((n, n_out), dtype=np.asarray(X).dtype)
    if n == 0:
        return out_arr
    cdef floating[:, ::1] out = out_arr
    cdef _Buffers buf = _Buffers(weights, biases, sizes, acts, min(chunk, n),
                                 out_arr.dtype, False)
    with nogil:
        start = 0
        while start < n:
            m = chunk if start + chunk <= n else n - start
            # the input rows are read where they are: A[0] points into X
            buf.net.A[0] = <void *> &X[start, 0]
            _forward(&buf.net, out[0, 0], m)
            _copy_rows(&out[start, 0], <floating *> buf.net.A[L - 1], m * n_out)
            start += m
    return out_arr


def backprop(list weights, list biases, object sizes, object acts, int cost,
             const floating[:, ::1] X, const floating[:, ::1] Y):
    """Gradients of the batch-mean cost over all rows of X.

    Returns (nabla_b, nabla_w): lists of arrays shaped (n_l,) and
    (n_l, n_{l-1}), with nabla_w^l = (1/m) (D^l)^T A^{l-1}  (BP4) and
    nabla_b^l = (1/m) column sums of D^l  (BP3)."""
    cdef Py_ssize_t m = X.shape[0], l
    cdef Py_ssize_t L = len(sizes)
    cdef int n_out, n_in
    dtype = np.asarray(X).dtype
    cdef _Buffers buf = _Buffers(weights, biases, sizes, acts, m, dtype, True)
    cdef floating scale = <floating> (1.0 / m)
    nabla_w = [np.empty((sizes[l], sizes[l - 1]), dtype=dtype) for l in range(1, L)]
    nabla_b = [np.zeros(sizes[l], dtype=dtype) for l in range(1, L)]
    cdef floating[:, ::1] gw
    cdef floating[::1] gb
    cdef Py_ssize_t n0 = sizes[0]
    _copy_rows(<floating *> buf.net.A[0], &X[0, 0], m * n0)
    with nogil:
        _forward(&buf.net, scale, m)
        _backward(&buf.net, cost, &Y[0, 0], m)
    for l in range(1, L):
        gw = nabla_w[l - 1]
        gb = nabla_b[l - 1]
        n_out = <int> sizes[l]
        n_in = <int> sizes[l - 1]
        with nogil:
            # nabla_w^l = (1/m) (D^l)^T A^{l-1}                           (BP4)
            gemm_rowmajor(Trans, NoTrans, n_out, n_in, <int> m,
                          scale, <floating *> buf.net.D[l], n_out,
                          <floating *> buf.net.A[l - 1], n_in,
                          <floating> 0, &gw[0, 0], n_in)
            # nabla_b^l = (1/m) column sums of D^l                        (BP3)
            bias_update(&gb[0], <floating *> buf.net.D[l], m, n_out, scale, <floating> 1)
    return nabla_b, nabla_w


# ---------------------------------------------------------------------------
# Python twins of the C kernels, used by the tests and by the slow paths.

def _activate(int act, floating[:, ::1] A, const floating[::1] b):
    """A <- f(A + b) in place; returns max |z|."""
    cdef floating r
    with nogil:
        r = activate(act, &A[0, 0], &b[0], A.shape[0], A.shape[1])
    return r


def _times_derivative(int act, floating[:, ::1] D, const floating[:, ::1] A):
    """D <- D * f'(z), f' taken from A = f(z); returns max |D|."""
    cdef floating r
    with nogil:
        r = times_derivative(act, &D[0, 0], &A[0, 0], D.shape[0], D.shape[1])
    return r


def _output_error(int cost, int act, floating[:, ::1] D, const floating[:, ::1] A,
                  const floating[:, ::1] Y):
    """D <- BP1's delta^L; returns max |D|."""
    cdef floating r
    with nogil:
        r = output_error(cost, act, &D[0, 0], &A[0, 0], &Y[0, 0], D.shape[0], D.shape[1])
    return r


def _bias_update(floating[::1] b, const floating[:, ::1] D, floating alpha, floating beta):
    """b <- beta b + alpha (column sums of D)."""
    with nogil:
        bias_update(&b[0], &D[0, 0], D.shape[0], D.shape[1], alpha, beta)


def _gather_rows(floating[:, ::1] out, const floating[:, ::1] X,
                 const Py_ssize_t[::1] rows):
    """out[i] <- X[rows[i]]."""
    with nogil:
        gather_rows(&out[0, 0], &X[0, 0], &rows[0], rows.shape[0], X.shape[1])


def _max_abs(const floating[::1] x):
    cdef floating r
    with nogil:
        r = max_abs(&x[0], x.shape[0])
    return r


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
