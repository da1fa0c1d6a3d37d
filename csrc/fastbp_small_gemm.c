/*
 * The kernels of fastbp_small_gemm.h, for processors with AVX-512, and the
 * run-time check that the processor has it.
 */
#include <stdlib.h>

#include "fastbp_kernels.h"          /* FBP_PREFETCH */
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

/* Feedforward tiles: NT_S samples by NT_R neurons, 20 sums in AVX-512's 32
 * vector registers, 9 loads for 20 multiply-adds. */
#define NT_S 5
#define NT_R 4
/* BP4 tiles: TN_R rows of W by TN_C vectors of columns, 16 sums in
 * registers, each vector of inputs loaded once for 4 rows (with tiles of
 * 2 rows by 2 vectors, W1's epoch took 1.18-1.32 times as long). */
#define TN_R 4
#define TN_C 4
/* BP2 tiles: NN_S samples by NN_C vectors of columns. */
#define NN_S 5
#define NN_C 2
/* The tiles of both, as comb_tile holds them: the larger of each side. */
#define COMB_X 5
#define COMB_C 4

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
static inline void prefetch_lines(const void *const *next, ptrdiff_t m,
                                  ptrdiff_t first, ptrdiff_t last)
{
    ptrdiff_t s, line;
    for (s = 0; s < m; s++)
        for (line = first; line < last; line++)
            FBP_PREFETCH((const char *)next[s] + 64 * line);
}

/* v[q] + v[q + 4], then + the pair 2 lanes on, then + the next lane: the
 * lanes of v added halves first, as hsum's comment says. */
INLINE double hsum_pd(__m512d v)
{
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

/* The same for 16 floats: 8 lanes on, 4, 2, 1. */
INLINE float hsum_ps(__m512 v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(p, _mm_shuffle_ps(p, p, 1)));
}

/* double: 8 in a vector */
#define REAL double
#define S _d
#define VEC __m512d
#define NL 8
#define MASK __mmask8
#define V_MASKZ_LOADU _mm512_maskz_loadu_pd
#define V_MASK_STOREU _mm512_mask_storeu_pd
#define V_LOADU _mm512_loadu_pd
#define V_STOREU _mm512_storeu_pd
#define V_SET1 _mm512_set1_pd
#define V_ZERO _mm512_setzero_pd
#define V_MUL _mm512_mul_pd
#define V_FMADD _mm512_fmadd_pd
#define V_HSUM hsum_pd
#include "fastbp_small_gemm_impl.h"

/* float: 16 in a vector */
#define REAL float
#define S _f
#define VEC __m512
#define NL 16
#define MASK __mmask16
#define V_MASKZ_LOADU _mm512_maskz_loadu_ps
#define V_MASK_STOREU _mm512_mask_storeu_ps
#define V_LOADU _mm512_loadu_ps
#define V_STOREU _mm512_storeu_ps
#define V_SET1 _mm512_set1_ps
#define V_ZERO _mm512_setzero_ps
#define V_MUL _mm512_mul_ps
#define V_FMADD _mm512_fmadd_ps
#define V_HSUM hsum_ps
#include "fastbp_small_gemm_impl.h"

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

/* Without the kernels (fbp_small_gemm_available() is 0) these are never
 * called; if they were, they would stop the program. */
#ifdef FBP_HAVE_SMALL_GEMM
#define FBP_SG_RUN(call) call
#else
#define FBP_SG_RUN(call) abort()
#endif

#define FBP_SG_PUBLIC(REAL, S)                                                         \
    void fbp_small_gemm_nt##S(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,                    \
                              const REAL *const *A, const REAL *W, ptrdiff_t ldw,       \
                              REAL *Z, ptrdiff_t ldz)                                   \
    {                                                                                   \
        FBP_SG_RUN(nt##S(m, n, k, A, W, ldw, Z, ldz));                                  \
    }                                                                                   \
    void fbp_small_gemm_tn##S(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, REAL alpha,        \
                              const REAL *D, ptrdiff_t ldd, const REAL *const *A,       \
                              REAL beta, REAL *W, ptrdiff_t ldw,                        \
                              const REAL *const *next, ptrdiff_t m_next)                \
    {                                                                                   \
        FBP_SG_RUN(tn##S(m, n, k, alpha, D, ldd, A, beta, W, ldw, next, m_next));       \
    }                                                                                   \
    void fbp_small_gemm_nn##S(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const REAL *D,     \
                              ptrdiff_t ldd, const REAL *W, ptrdiff_t ldw, REAL *O,     \
                              ptrdiff_t ldo)                                            \
    {                                                                                   \
        FBP_SG_RUN(nn##S(m, n, k, D, ldd, W, ldw, O, ldo));                             \
    }

FBP_SG_PUBLIC(double, _d)
FBP_SG_PUBLIC(float, _f)
