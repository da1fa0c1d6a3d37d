/*
 * fastbp_book_gemv.c -- the feedforward products z = np.dot(w, a) of a
 * whole mini-batch at once, with the bits of the dgemv call NumPy makes for
 * each sample.
 *
 * np.dot(w, a) for a row-major n_out x n_in w and a column a is OpenBLAS's
 * dgemv with w read as the column-major w^T ("T"): n_out dot products of
 * length n_in.  With n_in a multiple of 4 and below 2048 (one block of
 * OpenBLAS's NBMAX), its x86-64 kernels compute them so (OpenBLAS's
 * dgemv_t_4.c with the Haswell micro-kernel, used up to AVX-512 machines):
 *
 *   - rows in groups of 4 from the first: each row's dot product kept in 4
 *     lanes, lane k summing w[j] x[j] for j = k, k+4, k+8, ... in order with
 *     fused multiply-adds, then (lane0 + lane2) + (lane1 + lane3);
 *   - 2 rows left over: 2 lanes, lane k summing the rounded products for
 *     j = k, k+2, ... in order, then lane0 + lane1;
 *   - 1 row left over: 2 pairs of lanes, u for j = 0, 1 (mod 4) and v for
 *     j = 2, 3 (mod 4), rounded products summed in order, then
 *     (u0 + v0) + (u1 + v1);
 *   - y = 0 + t * 1 (the zeroed y plus alpha times the sum).
 *
 * That is the order of one dgemv call on one thread: OpenBLAS shares a
 * large product (from about 460,000 values of w in 0.3.30) out over its
 * threads by rows, and a thread's rows are grouped from its own first row.
 * The engine therefore uses this only where BLAS is held to one thread.
 * The bits are dgemv's for every finite result; a NaN may differ in sign or
 * payload (the inputs the engine passes are finite).
 *
 * Calling dgemv once per sample reads w once per sample (for W^1 of the
 * book's network, 188 KB ten times a mini-batch); doing the same sums for
 * all the samples in one pass over w reads it once.  The engine uses this
 * only where the installed OpenBLAS sums in the order above: when fastbp
 * loads, _book_gemv_matches_dgemv() (fastbp/_engine.pyx) compares the two
 * with SciPy's dgemv, bit for bit; elsewhere the engine calls dgemv.
 */
#include <stddef.h>

#include "fastbp_book.h"

/* The rounded products of the leftover rows: never a fused multiply-add. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

#define GEMV_TARGET __attribute__((target("avx2,fma")))
#define GEMV_INLINE static inline __attribute__((always_inline))

/* Samples whose sums are carried at once, 4 rows each: with AVX-512's 32
 * vector registers 5 (20 sums, 9 loads for 20 multiply-adds), with AVX2's
 * 16 registers 3 (12 sums and the 4 rows of W). */
#define GEMV_SAMPLES_MAX 5

/* The 4 rows of W (rows n_in apart) times `ns` samples (rows A[0 .. ns-1])
 * into Z[s * ldz + 0..3].  ns is a constant where this is inlined. */
GEMV_INLINE GEMV_TARGET void rows4(double *Z, ptrdiff_t ldz, const double *W,
                                   ptrdiff_t n_in, const double *const *A,
                                   const int ns)
{
    __m256d acc[4][GEMV_SAMPLES_MAX];
    ptrdiff_t j;
    int r, s;
    for (r = 0; r < 4; r++)
        for (s = 0; s < ns; s++)
            acc[r][s] = _mm256_setzero_pd();
    for (j = 0; j < n_in; j += 4) {
        const __m256d w0 = _mm256_loadu_pd(W + j);
        const __m256d w1 = _mm256_loadu_pd(W + n_in + j);
        const __m256d w2 = _mm256_loadu_pd(W + 2 * n_in + j);
        const __m256d w3 = _mm256_loadu_pd(W + 3 * n_in + j);
        for (s = 0; s < ns; s++) {
            const __m256d x = _mm256_loadu_pd(A[s] + j);
            acc[0][s] = _mm256_fmadd_pd(w0, x, acc[0][s]);
            acc[1][s] = _mm256_fmadd_pd(w1, x, acc[1][s]);
            acc[2][s] = _mm256_fmadd_pd(w2, x, acc[2][s]);
            acc[3][s] = _mm256_fmadd_pd(w3, x, acc[3][s]);
        }
    }
    for (s = 0; s < ns; s++)
        for (r = 0; r < 4; r++) {
            /* (lane0 + lane2, lane1 + lane3), then their sum */
            __m128d p = _mm_add_pd(_mm256_castpd256_pd128(acc[r][s]),
                                   _mm256_extractf128_pd(acc[r][s], 1));
            Z[s * ldz + r] = 0.0 + _mm_cvtsd_f64(_mm_hadd_pd(p, p));
        }
}

/* Samples of the leftover rows carried at once: each sample's sums are a
 * chain of dependent adds, so several samples side by side keep the adders
 * busy (5 sums of 4 lanes, within AVX2's 16 registers; m = 10 is then two
 * groups). */
#define GEMV_TAIL_SAMPLES 5

/* 2 leftover rows times `ns` samples: per sample and row, 2 lanes, lane k
 * summing the rounded products w[j] x[j], j = k, k+2, ...  Both rows' lanes
 * are kept in one 4-lane register, (row 0: lanes 0-1, row 1: lanes 2-3),
 * against the sample's two values (x[j], x[j+1]) twice: each lane sees the
 * products and sums of its own pair of 2-lane sums, so the bits are theirs,
 * for half the instructions. */
GEMV_INLINE GEMV_TARGET void rows2(double *Z, ptrdiff_t ldz, const double *W,
                                   ptrdiff_t n_in, const double *const *A, const int ns)
{
    __m256d acc[GEMV_TAIL_SAMPLES];
    ptrdiff_t j;
    int s;
    for (s = 0; s < ns; s++)
        acc[s] = _mm256_setzero_pd();
    for (j = 0; j < n_in; j += 2) {
        const __m256d w = _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(W + j)),
                                               _mm_loadu_pd(W + n_in + j), 1);
        for (s = 0; s < ns; s++) {
            const __m256d xx = _mm256_broadcast_pd((const __m128d *)(A[s] + j));
            acc[s] = _mm256_add_pd(acc[s], _mm256_mul_pd(w, xx));
        }
    }
    for (s = 0; s < ns; s++) {
        const __m128d r0 = _mm256_castpd256_pd128(acc[s]);
        const __m128d r1 = _mm256_extractf128_pd(acc[s], 1);
        Z[s * ldz] = 0.0 + _mm_cvtsd_f64(_mm_hadd_pd(r0, r0));
        Z[s * ldz + 1] = 0.0 + _mm_cvtsd_f64(_mm_hadd_pd(r1, r1));
    }
}

/* 1 leftover row times `ns` samples: per sample, 2 pairs of lanes, u for
 * j = 0, 1 (mod 4) and v for j = 2, 3 (mod 4), held together as the four
 * lanes (u0, u1, v0, v1) of one register. */
GEMV_INLINE GEMV_TARGET void rows1(double *Z, ptrdiff_t ldz, const double *W,
                                   ptrdiff_t n_in, const double *const *A, const int ns)
{
    __m256d acc[GEMV_TAIL_SAMPLES];
    ptrdiff_t j;
    int s;
    for (s = 0; s < ns; s++)
        acc[s] = _mm256_setzero_pd();
    for (j = 0; j < n_in; j += 4) {
        const __m256d w = _mm256_loadu_pd(W + j);
        for (s = 0; s < ns; s++)
            acc[s] = _mm256_add_pd(acc[s], _mm256_mul_pd(w, _mm256_loadu_pd(A[s] + j)));
    }
    for (s = 0; s < ns; s++) {
        /* (u0 + v0, u1 + v1), then their sum */
        const __m128d t = _mm_add_pd(_mm256_castpd256_pd128(acc[s]),
                                     _mm256_extractf128_pd(acc[s], 1));
        Z[s * ldz] = 0.0 + _mm_cvtsd_f64(_mm_hadd_pd(t, t));
    }
}

/* KERNEL (rows4, rows2 or rows1) over all m samples: S at a time, then the
 * m mod S left over.  The switch hands the kernel a constant count, so that
 * each case is compiled with its loops unrolled (cases S and up never
 * happen; S <= 5 leaves at most 4). */
#define GEMV_BY_SAMPLES(KERNEL, S, Z, ldz, W, n_in, A, m)                         \
    do {                                                                          \
        ptrdiff_t s_;                                                             \
        for (s_ = 0; s_ + (S) <= (m); s_ += (S))                                  \
            KERNEL((Z) + s_ * (ldz), ldz, W, n_in, (A) + s_, (S));                \
        switch ((m) - s_) {                                                       \
        case 4: KERNEL((Z) + s_ * (ldz), ldz, W, n_in, (A) + s_, 4); break;       \
        case 3: KERNEL((Z) + s_ * (ldz), ldz, W, n_in, (A) + s_, 3); break;       \
        case 2: KERNEL((Z) + s_ * (ldz), ldz, W, n_in, (A) + s_, 2); break;       \
        case 1: KERNEL((Z) + s_ * (ldz), ldz, W, n_in, (A) + s_, 1); break;       \
        default: break;                                                           \
        }                                                                         \
    } while (0)

/* gemv_rows_S: the whole product, the groups of 4 rows S samples at a time
 * (the AVX2 variant, S = 3), then the 2 or 1 rows left over,
 * GEMV_TAIL_SAMPLES samples at a time. */
#define DEFINE_GEMV_ROWS(NAME, TARGET, S)                                         \
TARGET static void NAME(double *Z, ptrdiff_t ldz, const double *W,                \
                        ptrdiff_t n_rows, ptrdiff_t n_in, const double *const *A, \
                        ptrdiff_t m)                                              \
{                                                                                 \
    ptrdiff_t r;                                                                  \
    for (r = 0; r + 4 <= n_rows; r += 4)                                          \
        GEMV_BY_SAMPLES(rows4, S, Z + r, ldz, W + r * n_in, n_in, A, m);          \
    if (n_rows - r >= 2) {                                                        \
        GEMV_BY_SAMPLES(rows2, GEMV_TAIL_SAMPLES, Z + r, ldz, W + r * n_in, n_in, \
                        A, m);                                                    \
        r += 2;                                                                   \
    }                                                                             \
    if (n_rows - r == 1)                                                          \
        GEMV_BY_SAMPLES(rows1, GEMV_TAIL_SAMPLES, Z + r, ldz, W + r * n_in, n_in, \
                        A, m);                                                    \
}

DEFINE_GEMV_ROWS(gemv_rows_avx512, __attribute__((target("avx2,fma,avx512f,avx512vl"))), 5)
DEFINE_GEMV_ROWS(gemv_rows_avx2, GEMV_TARGET, 3)

int fbp_book_gemv_usable(ptrdiff_t n_in)
{
    return n_in > 0 && n_in % 4 == 0 && n_in < 2048
           && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int fbp_book_gemv_wide(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}

void fbp_book_gemv(double *Z, ptrdiff_t ldz, const double *W, ptrdiff_t n_rows,
                   ptrdiff_t n_in, const double *const *A, ptrdiff_t m, int wide)
{
    if (wide)
        gemv_rows_avx512(Z, ldz, W, n_rows, n_in, A, m);
    else
        gemv_rows_avx2(Z, ldz, W, n_rows, n_in, A, m);
}

#else   /* not GCC-compatible on x86-64: the engine makes the dgemv calls */

int fbp_book_gemv_usable(ptrdiff_t n_in)
{
    (void)n_in;
    return 0;
}

int fbp_book_gemv_wide(void)
{
    return 0;
}

void fbp_book_gemv(double *Z, ptrdiff_t ldz, const double *W, ptrdiff_t n_rows,
                   ptrdiff_t n_in, const double *const *A, ptrdiff_t m, int wide)
{
    (void)Z; (void)ldz; (void)W; (void)n_rows; (void)n_in; (void)A; (void)m;
    (void)wide;
}

#endif
