/*
 * The kernels of fastbp_small_gemm.h, for processors with AVX-512 and for
 * those with AVX2 and FMA, and the run-time check of which one the
 * processor runs.
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

/* ------------------------------------------------------------------ */
/* AVX-512: 32 vector registers, masks in mask registers. */

#define TARGET __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET
#define ISA _avx512

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

/* v[q] + v[q + 4], then + the pair 2 lanes on, then + the next lane: the
 * lanes of v added halves first, as hsum's comment says. */
INLINE double hsum_pd512(__m512d v)
{
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

/* The same for 16 floats: 8 lanes on, 4, 2, 1. */
INLINE float hsum_ps512(__m512 v)
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
#define V_FIRST_LANES(n) ((__mmask8)((1u << (n)) - 1u))
#define V_MASKZ_LOADU _mm512_maskz_loadu_pd
#define V_MASK_STOREU _mm512_mask_storeu_pd
#define V_LOADU _mm512_loadu_pd
#define V_STOREU _mm512_storeu_pd
#define V_SET1 _mm512_set1_pd
#define V_ZERO _mm512_setzero_pd
#define V_MUL _mm512_mul_pd
#define V_FMADD _mm512_fmadd_pd
#define V_HSUM hsum_pd512
#include "fastbp_small_gemm_impl.h"

/* float: 16 in a vector */
#define REAL float
#define S _f
#define VEC __m512
#define NL 16
#define MASK __mmask16
#define V_FIRST_LANES(n) ((__mmask16)((1u << (n)) - 1u))
#define V_MASKZ_LOADU _mm512_maskz_loadu_ps
#define V_MASK_STOREU _mm512_mask_storeu_ps
#define V_LOADU _mm512_loadu_ps
#define V_STOREU _mm512_storeu_ps
#define V_SET1 _mm512_set1_ps
#define V_ZERO _mm512_setzero_ps
#define V_MUL _mm512_mul_ps
#define V_FMADD _mm512_fmadd_ps
#define V_HSUM hsum_ps512
#include "fastbp_small_gemm_impl.h"

#undef TARGET
#undef INLINE
#undef ISA
#undef NT_S
#undef NT_R
#undef TN_R
#undef TN_C
#undef NN_S
#undef NN_C
#undef COMB_X
#undef COMB_C

/* ------------------------------------------------------------------ */
/* AVX2 and FMA: 16 vector registers of half the width; a mask is a
 * vector whose lanes are all ones (taken) or zeros (masked off), and the
 * masked loads and stores (vmaskmov) touch no memory in the lanes off. */

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET
#define ISA _avx2

/* Every tile fills 12 of the 16 registers with sums and leaves the other 4
 * for what one step loads: feedforward tiles of 4 samples by 3 neurons (3
 * rows of W held, a sample's vector loaded at a time), BP4 tiles of 4 rows
 * of W by 3 vectors of columns and BP2 tiles of 4 samples by 3 vectors (3
 * vectors of a row held, 1 coefficient broadcast at a time). */
#define NT_S 4
#define NT_R 3
#define TN_R 4
#define TN_C 3
#define NN_S 4
#define NN_C 3
#define COMB_X 4
#define COMB_C 3

/* v[q] + v[q + 2], then + the next lane: halves first, as above. */
INLINE double hsum_pd256(__m256d v)
{
    __m128d q = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

/* The same for 8 floats: 4 lanes on, 2, 1. */
INLINE float hsum_ps256(__m256 v)
{
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(p, _mm_shuffle_ps(p, p, 1)));
}

/* The first n lanes' mask, read out of a row of NL ones then NL zeros. */
static const long long lanes_d[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
static const int lanes_f[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

INLINE __m256i first_lanes_d(ptrdiff_t n)
{
    return _mm256_loadu_si256((const __m256i *)(lanes_d + 4 - n));
}

INLINE __m256i first_lanes_f(ptrdiff_t n)
{
    return _mm256_loadu_si256((const __m256i *)(lanes_f + 8 - n));
}

/* AVX-512's argument order for the masked loads: mask, then address. */
INLINE __m256d maskz_loadu_pd256(__m256i mask, const double *p)
{
    return _mm256_maskload_pd(p, mask);
}

INLINE __m256 maskz_loadu_ps256(__m256i mask, const float *p)
{
    return _mm256_maskload_ps(p, mask);
}

/* double: 4 in a vector */
#define REAL double
#define S _d
#define VEC __m256d
#define NL 4
#define MASK __m256i
#define V_FIRST_LANES first_lanes_d
#define V_MASKZ_LOADU maskz_loadu_pd256
#define V_MASK_STOREU _mm256_maskstore_pd
#define V_LOADU _mm256_loadu_pd
#define V_STOREU _mm256_storeu_pd
#define V_SET1 _mm256_set1_pd
#define V_ZERO _mm256_setzero_pd
#define V_MUL _mm256_mul_pd
#define V_FMADD _mm256_fmadd_pd
#define V_HSUM hsum_pd256
#include "fastbp_small_gemm_impl.h"

/* float: 8 in a vector */
#define REAL float
#define S _f
#define VEC __m256
#define NL 8
#define MASK __m256i
#define V_FIRST_LANES first_lanes_f
#define V_MASKZ_LOADU maskz_loadu_ps256
#define V_MASK_STOREU _mm256_maskstore_ps
#define V_LOADU _mm256_loadu_ps
#define V_STOREU _mm256_storeu_ps
#define V_SET1 _mm256_set1_ps
#define V_ZERO _mm256_setzero_ps
#define V_MUL _mm256_mul_ps
#define V_FMADD _mm256_fmadd_ps
#define V_HSUM hsum_ps256
#include "fastbp_small_gemm_impl.h"

#undef TARGET
#undef INLINE
#undef ISA

#endif /* FBP_HAVE_SMALL_GEMM */

int fbp_small_gemm_available(void)
{
#ifdef FBP_HAVE_SMALL_GEMM
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return 0;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq"))
        return FBP_SMALL_AVX512;
    return FBP_SMALL_AVX2;
#else
    return 0;
#endif
}

/* Without the kernels (fbp_small_gemm_available() is 0) these are never
 * called; if they were, they would stop the program.  A variant the
 * processor does not run is the caller's error (the engine checks). */
#ifdef FBP_HAVE_SMALL_GEMM
#define FBP_SG_RUN(variant, name, S, args)                                             \
    do {                                                                                \
        if ((variant) == FBP_SMALL_AVX512)                                              \
            name##S##_avx512 args;                                                      \
        else if ((variant) == FBP_SMALL_AVX2)                                           \
            name##S##_avx2 args;                                                        \
        else                                                                            \
            abort();                                                                    \
    } while (0)
#else
#define FBP_SG_RUN(variant, name, S, args) abort()
#endif

#define FBP_SG_PUBLIC(REAL, S)                                                         \
    void fbp_small_gemm_nt##S(int variant, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,       \
                              const REAL *const *A, const REAL *W, ptrdiff_t ldw,       \
                              REAL *Z, ptrdiff_t ldz)                                   \
    {                                                                                   \
        FBP_SG_RUN(variant, nt, S, (m, n, k, A, W, ldw, Z, ldz));                       \
    }                                                                                   \
    void fbp_small_gemm_tn##S(int variant, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,       \
                              REAL alpha, const REAL *D, ptrdiff_t ldd,                 \
                              const REAL *const *A, REAL beta, REAL *W, ptrdiff_t ldw,  \
                              const REAL *const *next, ptrdiff_t m_next)                \
    {                                                                                   \
        FBP_SG_RUN(variant, tn, S, (m, n, k, alpha, D, ldd, A, beta, W, ldw, next,      \
                                    m_next));                                           \
    }                                                                                   \
    void fbp_small_gemm_nn##S(int variant, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,       \
                              const REAL *D, ptrdiff_t ldd, const REAL *W,              \
                              ptrdiff_t ldw, REAL *O, ptrdiff_t ldo)                    \
    {                                                                                   \
        FBP_SG_RUN(variant, nn, S, (m, n, k, D, ldd, W, ldw, O, ldo));                  \
    }

FBP_SG_PUBLIC(double, _d)
FBP_SG_PUBLIC(float, _f)
