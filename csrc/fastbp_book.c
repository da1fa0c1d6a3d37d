/* The kernels of fastbp_book.h: network.py's float64 arithmetic. */
#include <math.h>

#include "fastbp_book.h"
#include "fastbp_clones.h"
#include "fastbp_kernels.h"          /* the cost codes */

/* NumPy rounds a*b and then the sum; a fused multiply-add would round once.
 * The AVX2 and AVX-512 clones have FMA instructions, so forbid the compiler
 * to contract a*b + c into one. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Columns of W worked on at once in fbp_book_weight_step: for W1's step
 * (30 x 784, 10 samples) on AVX-512, 64 and 128 ran about a quarter faster
 * than 16 or 32. */
#define BOOK_CHUNK 64

void fbp_book_sigmoid(double *z, const double *b, ptrdiff_t n,
                      double *neg, double *e, fbp_unary_loop exp_loop,
                      void *exp_data)
{
    ptrdiff_t i, dims[1] = {n}, steps[2] = {sizeof(double), sizeof(double)};
    char *args[2] = {(char *)neg, (char *)e};
    for (i = 0; i < n; i++) {
        z[i] = z[i] + b[i];                 /* np.dot(w, a) + b */
        neg[i] = -z[i];
    }
    exp_loop(args, dims, steps, exp_data);  /* np.exp(-z), into separate memory */
    for (i = 0; i < n; i++)
        z[i] = 1.0 / (1.0 + e[i]);
}

void fbp_book_output_error(int cost, double *delta, const double *a,
                           const double *y, ptrdiff_t n)
{
    ptrdiff_t i;
    if (cost == FBP_CROSS_ENTROPY) {
        for (i = 0; i < n; i++)
            delta[i] = a[i] - y[i];
    } else {
        for (i = 0; i < n; i++)
            delta[i] = (a[i] - y[i]) * (a[i] * (1.0 - a[i]));
    }
}

void fbp_book_times_derivative(double *delta, const double *a, ptrdiff_t n)
{
    ptrdiff_t i;
    for (i = 0; i < n; i++)
        delta[i] = delta[i] * (a[i] * (1.0 - a[i]));
}

/* Inlined into each clone of fbp_book_weight_step, to be compiled for its
 * instruction set. */
#if defined(__GNUC__)
#define BOOK_INLINE static inline __attribute__((always_inline))
#else
#define BOOK_INLINE static inline
#endif

/* W_new[i, j0:j0+w] for one row i; w <= BOOK_CHUNK (a constant for the
 * compiler in the common case, w == BOOK_CHUNK). */
BOOK_INLINE int book_weight_chunk(double *W_new, const double *W, const double *D,
                                  ptrdiff_t ldd, const double *A, ptrdiff_t lda,
                                  ptrdiff_t m, ptrdiff_t w, double decay, double c,
                                  double limit)
{
    double s[BOOK_CHUNK];
    ptrdiff_t j, k;
    int bad = 0;
    for (j = 0; j < w; j++)
        s[j] = 0.0;
    for (k = 0; k < m; k++) {
        const double d = D[k * ldd];
        const double *a = A + k * lda;
#pragma omp simd
        for (j = 0; j < w; j++)
            s[j] = s[j] + d * a[j];         /* nabla_w + delta a^T */
    }
#pragma omp simd reduction(|:bad)
    for (j = 0; j < w; j++) {
        double v = decay * W[j] - c * s[j]; /* (1-eta*(lmbda/n))*w - (eta/m)*nabla_w */
        W_new[j] = v;
        bad |= !(fabs(v) <= limit);
    }
    return bad;
}

FBP_CLONES
int fbp_book_weight_step(double *W_new, const double *W, const double *D,
                         ptrdiff_t ldd, const double *A, ptrdiff_t lda, ptrdiff_t m,
                         ptrdiff_t n_out, ptrdiff_t n_in, double decay,
                         double c, double limit)
{
    ptrdiff_t i, j0, w;
    int bad = 0;
    /* Column chunks outside, rows inside: the chunk's m x BOOK_CHUNK
     * inputs stay in the L1 cache while every row of W reads them. */
    for (j0 = 0; j0 < n_in; j0 += BOOK_CHUNK) {
        w = n_in - j0 < BOOK_CHUNK ? n_in - j0 : BOOK_CHUNK;
        for (i = 0; i < n_out; i++) {
            if (w == BOOK_CHUNK)
                bad |= book_weight_chunk(W_new + i * n_in + j0, W + i * n_in + j0,
                                         D + i, ldd, A + j0, lda, m, BOOK_CHUNK, decay,
                                         c, limit);
            else
                bad |= book_weight_chunk(W_new + i * n_in + j0, W + i * n_in + j0,
                                         D + i, ldd, A + j0, lda, m, w, decay, c,
                                         limit);
        }
    }
    return !bad;
}

int fbp_book_bias_step(double *b_new, const double *b, const double *D,
                       ptrdiff_t ldd, ptrdiff_t m, ptrdiff_t n, double c,
                       double limit)
{
    ptrdiff_t i, k;
    int bad = 0;
    for (i = 0; i < n; i++) {
        double s = 0.0;
        for (k = 0; k < m; k++)
            s = s + D[k * ldd + i];         /* nabla_b + delta */
        b_new[i] = b[i] - c * s;            /* b - (eta/m)*nabla_b */
        bad |= !(fabs(b_new[i]) <= limit);
    }
    return !bad;
}
