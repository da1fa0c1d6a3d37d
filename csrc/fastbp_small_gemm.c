/*
 * The kernels of fastbp_small_gemm.h, for processors with AVX-512, and the
 * run-time check that the processor has it.
 */
#include <math.h>

#include "fastbp_small_gemm.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
    && __GNUC__ >= 9 && !defined(FBP_NO_SMALL_GEMM)
#define FBP_HAVE_SMALL_GEMM 1

#include <immintrin.h>

/* Every fused multiply-add is written out (_mm512_fmadd_pd, fma): the
 * compiler fuses nothing by itself, so that each result is rounded the same
 * way in every tile, whatever code the compiler makes of it. */
#pragma GCC optimize("fp-contract=off")

#define TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET
#define NL 8                    /* doubles in a vector */

/* Feedforward tiles: NT_S samples by NT_R neurons, 20 sums in AVX-512's 32
 * vector registers, 9 loads for 20 multiply-adds. */
#define NT_S 5
#define NT_R 4
/* BP4 tiles: TN_R rows of W by TN_C vectors of columns. */
#define TN_R 2
#define TN_C 2

typedef __m512d vec;

/* The lanes of v added in a fixed order: halves, then quarters, then pairs. */
INLINE double hsum(vec v)
{
    double t[NL];
    int w, q;
    _mm512_storeu_pd(t, v);
    for (w = NL / 2; w >= 1; w /= 2)
        for (q = 0; q < w; q++)
            t[q] = t[q] + t[q + w];
    return t[0];
}

/* Feedforward tile: Z[s, r] = sum_j A[s][j] W[r, j] for s < ns, r < nr
 * (ns <= NT_S, nr <= NT_R, constants where inlined).  Lane q of a sum adds
 * the products of j = q, q + NL, q + 2 NL, ... in order with fused
 * multiply-adds; the lanes are added by hsum, then the last k % NL products
 * one by one (fused).  So every Z[s, r] is rounded the same way, whatever
 * tile holds it. */
INLINE void nt_tile(const int ns, const int nr, ptrdiff_t k, const double *const *A,
                    const double *W, ptrdiff_t ldw, double *Z, ptrdiff_t ldz)
{
    vec acc[NT_S][NT_R], a[NT_S], w[NT_R];
    ptrdiff_t j, jj;
    int s, r;
#pragma GCC unroll 8
    for (s = 0; s < ns; s++)
#pragma GCC unroll 8
        for (r = 0; r < nr; r++)
            acc[s][r] = _mm512_setzero_pd();
    for (j = 0; j + NL <= k; j += NL) {
#pragma GCC unroll 8
        for (s = 0; s < ns; s++)
            a[s] = _mm512_loadu_pd(A[s] + j);
#pragma GCC unroll 8
        for (r = 0; r < nr; r++)
            w[r] = _mm512_loadu_pd(W + r * ldw + j);
#pragma GCC unroll 8
        for (s = 0; s < ns; s++)
#pragma GCC unroll 8
            for (r = 0; r < nr; r++)
                acc[s][r] = _mm512_fmadd_pd(a[s], w[r], acc[s][r]);
    }
#pragma GCC unroll 8
    for (s = 0; s < ns; s++)
#pragma GCC unroll 8
        for (r = 0; r < nr; r++) {
            double z = hsum(acc[s][r]);
            for (jj = j; jj < k; jj++)
                z = fma(A[s][jj], W[r * ldw + jj], z);
            Z[s * ldz + r] = z;
        }
}

#define NT_CASE(ns, nr) \
    case (ns) * 8 + (nr): nt_tile(ns, nr, k, A + s, W + r * ldw, ldw, Z + s * ldz + r, ldz); break;
#define NT_ROWS(ns) NT_CASE(ns, 1) NT_CASE(ns, 2) NT_CASE(ns, 3) NT_CASE(ns, 4)

static TARGET void nt(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const double *const *A,
                      const double *W, ptrdiff_t ldw, double *Z, ptrdiff_t ldz)
{
    ptrdiff_t s, r;
    for (s = 0; s < m; s += NT_S) {
        int ns = (int)(m - s < NT_S ? m - s : NT_S);
        for (r = 0; r < n; r += NT_R) {
            int nr = (int)(n - r < NT_R ? n - r : NT_R);
            switch (ns * 8 + nr) {
            NT_ROWS(1) NT_ROWS(2) NT_ROWS(3) NT_ROWS(4) NT_ROWS(5)
            }
        }
    }
}

/* BP4 tile: W[r, j] <- beta W[r, j] + alpha sum_s D[s, r] A[s][j] for r < nr
 * (<= TN_R, a constant where inlined) and the nc vectors of columns from j0
 * (nc <= TN_C).  The sum runs over s in order, its first product rounded and
 * the others fused; then W <- fma(sum, alpha, beta W), beta W not computed
 * when beta is 1. */
INLINE void tn_tile(const int nr, const int nc, ptrdiff_t m, double alpha,
                    const double *D, ptrdiff_t ldd, const double *const *A, ptrdiff_t j0,
                    double beta, double *W, ptrdiff_t ldw)
{
    vec acc[TN_R][TN_C], a[TN_C];
    ptrdiff_t s;
    int r, c;
#pragma GCC unroll 8
    for (c = 0; c < nc; c++)
        a[c] = _mm512_loadu_pd(A[0] + j0 + c * NL);
#pragma GCC unroll 8
    for (r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (c = 0; c < nc; c++)
            acc[r][c] = _mm512_mul_pd(a[c], _mm512_set1_pd(D[r]));
    for (s = 1; s < m; s++) {
#pragma GCC unroll 8
        for (c = 0; c < nc; c++)
            a[c] = _mm512_loadu_pd(A[s] + j0 + c * NL);
#pragma GCC unroll 8
        for (r = 0; r < nr; r++) {
            vec d = _mm512_set1_pd(D[s * ldd + r]);
#pragma GCC unroll 8
            for (c = 0; c < nc; c++)
                acc[r][c] = _mm512_fmadd_pd(a[c], d, acc[r][c]);
        }
    }
#pragma GCC unroll 8
    for (r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (c = 0; c < nc; c++) {
            double *p = W + r * ldw + j0 + c * NL;
            vec w = _mm512_loadu_pd(p);
            if (beta != 1)
                w = _mm512_mul_pd(w, _mm512_set1_pd(beta));
            _mm512_storeu_pd(p, _mm512_fmadd_pd(acc[r][c], _mm512_set1_pd(alpha), w));
        }
}

/* The same for the single column j, in scalar arithmetic with the same
 * roundings. */
INLINE void tn_column(ptrdiff_t n, ptrdiff_t m, double alpha, const double *D,
                      ptrdiff_t ldd, const double *const *A, ptrdiff_t j,
                      double beta, double *W, ptrdiff_t ldw)
{
    ptrdiff_t r, s;
    for (r = 0; r < n; r++) {
        double sum = A[0][j] * D[r], w = W[r * ldw + j];
        for (s = 1; s < m; s++)
            sum = fma(A[s][j], D[s * ldd + r], sum);
        if (beta != 1)
            w = w * beta;
        W[r * ldw + j] = fma(sum, alpha, w);
    }
}

#define TN_CASE(nr, nc) \
    case (nr) * 8 + (nc): tn_tile(nr, nc, m, alpha, D + r, ldd, A, j, beta, W + r * ldw, ldw); break;

/* The step between the row tiles visited one after the other in a block
 * of columns: tile q * step (mod the number of tiles), for q = 0, 1, ...
 * Not 1: when one thread's W rows end where another's begin, rows visited
 * at a constant stride lead the processor to fetch the next rows, the
 * other thread's, while that thread writes them; in W1's epoch loop that
 * made the BP4 step of the block after another take twice as long.  3, 5
 * or 7, whichever is prime to the number of tiles, so that every tile is
 * visited (the engine's blocks have at most 32 tiles; 105 = 3 * 5 * 7). */
static ptrdiff_t tile_step(ptrdiff_t ntiles)
{
    if (ntiles % 3 != 0)
        return 3;
    if (ntiles % 5 != 0)
        return 5;
    if (ntiles % 7 != 0)
        return 7;
    return 1;
}

/* Bring lines [first, last) of each of the m rows `next` into L2: a later
 * mini-batch's inputs, fetched while BP4 computes. */
static inline void prefetch_lines(const double *const *next, ptrdiff_t m,
                                  ptrdiff_t first, ptrdiff_t last)
{
    ptrdiff_t s, line;
    for (s = 0; s < m; s++)
        for (line = first; line < last; line++)
            __builtin_prefetch((const char *)next[s] + 64 * line, 0, 2);
}

static TARGET void tn(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, double alpha,
                      const double *D, ptrdiff_t ldd, const double *const *A,
                      double beta, double *W, ptrdiff_t ldw,
                      const double *const *next, ptrdiff_t m_next)
{
    ptrdiff_t j, q, r, kv = k - k % NL;
    ptrdiff_t ntiles = (n + TN_R - 1) / TN_R, step = tile_step(ntiles);
    ptrdiff_t blocks = (kv + TN_C * NL - 1) / (TN_C * NL), b = 0;
    ptrdiff_t row_lines = (k * (ptrdiff_t)sizeof(double) + 63) / 64;
    if (blocks == 0)
        prefetch_lines(next, m_next, 0, row_lines);
    for (j = 0; j < kv; j += TN_C * NL, b++) {
        int nc = (int)((kv - j) / NL < TN_C ? (kv - j) / NL : TN_C);
        /* this block's share of the next inputs: about k / blocks values a row */
        prefetch_lines(next, m_next, row_lines * b / blocks, row_lines * (b + 1) / blocks);
        for (q = 0; q < ntiles; q++) {
            r = (q * step) % ntiles * TN_R;
            int nr = (int)(n - r < TN_R ? n - r : TN_R);
            switch (nr * 8 + nc) {
            TN_CASE(1, 1) TN_CASE(1, 2) TN_CASE(2, 1) TN_CASE(2, 2)
            }
        }
    }
    for (j = kv; j < k; j++)
        tn_column(n, m, alpha, D, ldd, A, j, beta, W, ldw);
}

#endif /* FBP_HAVE_SMALL_GEMM */

int fbp_small_gemm_available(void)
{
#ifdef FBP_HAVE_SMALL_GEMM
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
           && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

void fbp_small_gemm_nt(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                       const double *const *A, const double *W, ptrdiff_t ldw,
                       double *Z, ptrdiff_t ldz)
{
#ifdef FBP_HAVE_SMALL_GEMM
    nt(m, n, k, A, W, ldw, Z, ldz);
#else
    (void)m; (void)n; (void)k; (void)A; (void)W; (void)ldw; (void)Z; (void)ldz;
#endif
}

void fbp_small_gemm_tn(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, double alpha,
                       const double *D, ptrdiff_t ldd, const double *const *A,
                       double beta, double *W, ptrdiff_t ldw,
                       const double *const *next, ptrdiff_t m_next)
{
#ifdef FBP_HAVE_SMALL_GEMM
    tn(m, n, k, alpha, D, ldd, A, beta, W, ldw, next, m_next);
#else
    (void)m; (void)n; (void)k; (void)alpha; (void)D; (void)ldd; (void)A; (void)beta;
    (void)W; (void)ldw; (void)next; (void)m_next;
#endif
}
