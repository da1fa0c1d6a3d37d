/*
 * fastbp_kernels.h -- the element-wise work of backpropagation, in C.
 *
 * Everything that is not a matrix product lives here: the activation
 * functions and their derivatives, the output error BP1, the factor
 * sigma'(z) of BP2, the bias update BP3, and the gather of a mini-batch.
 * The matrix products themselves (feedforward, BP2, BP4) are BLAS calls
 * made from fastbp/_engine.pyx, or for narrow layers the kernels of
 * fastbp_small_gemm.h.
 *
 * Matrices are row-major, one sample per row: an m x n matrix M has
 * M[i*n + j] for sample i, neuron j.  Each kernel exists for double
 * (suffix _d) and float (suffix _f); both are generated from
 * fastbp_kernels_impl.h.
 */
#ifndef FASTBP_KERNELS_H
#define FASTBP_KERNELS_H

#include <stdatomic.h>
#include <stddef.h>

/* Activation codes; the same numbers are used in fastbp/activations.py. */
enum fbp_activation {
    FBP_SIGMOID = 0,
    FBP_LINEAR = 1,
    FBP_TANH = 2,
    FBP_RELU = 3
};

/* Cost codes; the same numbers are used in fastbp/costs.py. */
enum fbp_cost {
    FBP_QUADRATIC = 0,
    FBP_CROSS_ENTROPY = 1
};

#define FBP_DECLARE(REAL, S)                                                   \
    /* A <- f(A + 1 b^T) in place; returns max |z| (NaN if any z is NaN). */   \
    REAL fbp_activate##S(int act, REAL *A, ptrdiff_t lda, const REAL *b,       \
                         ptrdiff_t m, ptrdiff_t n);                            \
    /* D <- D (.) f'(z), f' taken from the activation A (BP2's factor);     */ \
    /* returns max |D| (NaN-propagating).                                   */ \
    REAL fbp_times_derivative##S(int act, REAL *D, ptrdiff_t ldd,              \
                                 const REAL *A, ptrdiff_t lda,                 \
                                 ptrdiff_t m, ptrdiff_t n);                    \
    /* BP1: D <- grad_A C (.) f'(z) from A and the targets Y;               */ \
    /* the cross-entropy, taken with a sigmoid output only, D = A - Y.     */ \
    /* Returns max |D| (NaN-propagating).                                   */ \
    REAL fbp_output_error##S(int cost, int act, REAL *D, ptrdiff_t ldd,        \
                             const REAL *A, ptrdiff_t lda,                     \
                             const REAL *Y, ptrdiff_t ldy,                     \
                             ptrdiff_t m, ptrdiff_t n);                        \
    /* BP3: b <- beta b + alpha * (column sums of D).                       */ \
    void fbp_bias_update##S(REAL *b, const REAL *D, ptrdiff_t ldd,             \
                            ptrdiff_t m, ptrdiff_t n, REAL alpha, REAL beta);  \
    /* out[i, :] <- the n values at rows[order[i]] for i < m: the rows of  */ \
    /* one mini-batch, wherever each lives.  single: the source rows hold   */ \
    /* floats (else doubles), converted to REAL as they are copied.         */ \
    void fbp_gather_rows##S(REAL *out, const void *const *rows,                \
                            const ptrdiff_t *order, int single,                \
                            ptrdiff_t m, ptrdiff_t n);                         \
    /* max |x| over n values (NaN-propagating).                             */ \
    REAL fbp_max_abs##S(const REAL *x, ptrdiff_t n);                           \
    /* max |x| over the n rows rows[0 .. n-1] of width values each, which  */ \
    /* may lie anywhere (NaN-propagating).                                  */ \
    REAL fbp_rows_max_abs##S(const REAL *const *rows, ptrdiff_t n,             \
                             ptrdiff_t width);                                 \
    /* Cost of the rows of A against Y, summed (not averaged) over samples. */ \
    double fbp_cost_sum##S(int cost, const REAL *A, const REAL *Y,             \
                           ptrdiff_t m, ptrdiff_t n);                          \
    /* out[i] <- argmax_j A[i, j] (first maximum, like numpy.argmax).       */ \
    void fbp_argmax_rows##S(ptrdiff_t *out, const REAL *A, ptrdiff_t m,        \
                            ptrdiff_t n);

FBP_DECLARE(double, _d)
FBP_DECLARE(float, _f)

#undef FBP_DECLARE

/* A barrier for the threads of the engine's parallel epoch loop.  Each
 * thread keeps its own local_sense (initially 0) across calls. */
typedef struct {
    _Atomic int count;
    _Atomic int sense;
    int n_threads;
} fbp_barrier;

void fbp_barrier_init(fbp_barrier *bar, int n_threads);
void fbp_barrier_wait(fbp_barrier *bar, int *local_sense);

/* Fetch the cache line at p into this core's L2 cache.  Written out on
 * x86-64 as an asm volatile, which the compiler never drops: GCC 12's
 * dead-code elimination removed a loop of __builtin_prefetch (or
 * _mm_prefetch) calls whole from the small kernels, silently. */
#if defined(__GNUC__) && defined(__x86_64__)
#define FBP_PREFETCH(p) __asm__ volatile("prefetcht1 %0" : : "m"(*(const char *)(p)))
#elif defined(__GNUC__)
#define FBP_PREFETCH(p) __builtin_prefetch((p), 0, 2)
#else
#define FBP_PREFETCH(p) ((void)(p))
#endif

/* Rows of a data set to bring into this core's L2 cache ahead of their use:
 * rows[order[0]], ..., rows[order[count - 1]], row_bytes bytes each, taken
 * a few cache lines at a time.  A thread waiting at the barrier fetches the
 * next mini-batch's inputs instead of idling. */
typedef struct {
    const void *const *rows;
    const ptrdiff_t *order;
    ptrdiff_t count;
    size_t row_bytes;
    ptrdiff_t row;          /* the cursor: the next line to fetch */
    size_t offset;
} fbp_prefetch;

void fbp_prefetch_start(fbp_prefetch *pf, const void *const *rows,
                        const ptrdiff_t *order, ptrdiff_t count, size_t row_bytes);
/* Issue prefetches for up to `lines` cache lines; 0 when all are issued. */
int fbp_prefetch_some(fbp_prefetch *pf, int lines);
/* fbp_barrier_wait, spent fetching pf's rows (when pf is not NULL). */
void fbp_barrier_wait_prefetching(fbp_barrier *bar, int *local_sense,
                                  fbp_prefetch *pf);

#endif /* FASTBP_KERNELS_H */
