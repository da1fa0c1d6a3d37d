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

/* Inlined into each clone of book_weight_step_portable, to be compiled for its
 * instruction set. */
#if defined(__GNUC__)
#define BOOK_INLINE static inline __attribute__((always_inline))
#else
#define BOOK_INLINE static inline
#endif

/* W_new[i, j0:j0+w] for one row i; w <= BOOK_CHUNK (a constant for the
 * compiler in the common case, w == BOOK_CHUNK). */
BOOK_INLINE int book_weight_chunk(double *W_new, const double *W, const double *D,
                                  ptrdiff_t ldd, const double *const *A, ptrdiff_t j0,
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
        const double *a = A[k] + j0;
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
static int book_weight_step_portable(double *W_new, const double *W, const double *D,
                                     ptrdiff_t ldd, const double *const *A,
                                     ptrdiff_t m, ptrdiff_t n_out, ptrdiff_t n_in,
                                     double decay, double c, double limit)
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
                                         D + i, ldd, A, j0, m, BOOK_CHUNK, decay,
                                         c, limit);
            else
                bad |= book_weight_chunk(W_new + i * n_in + j0, W + i * n_in + j0,
                                         D + i, ldd, A, j0, m, w, decay, c,
                                         limit);
        }
    }
    return !bad;
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

#define BOOK_AVX512 __attribute__((target("avx512f")))
#define BOOK_VECTORS (BOOK_CHUNK / 8)

/* The same sums and step as book_weight_chunk, with AVX-512 registers
 * named: row i's nv vectors of 8 columns (nv a constant where inlined),
 * the last one masked by `last` (0xff for a whole vector).  GCC's
 * vectorization of book_weight_chunk zeroes its sums in memory and keeps
 * some of them there between the loops; this ran W1's step (10 samples,
 * 784 columns) about 1.6 times as fast, with the same bits. */
BOOK_INLINE BOOK_AVX512 int book_weight_vectors(double *W_new, const double *W,
                                                const double *D, ptrdiff_t ldd,
                                                const double *const *A, ptrdiff_t j0,
                                                ptrdiff_t m, const int nv, __mmask8 last,
                                                __m512d decay, __m512d c, __m512d limit)
{
    __m512d s[BOOK_VECTORS];
    __mmask8 bad = 0;
    ptrdiff_t k;
    int v;
    for (v = 0; v < nv; v++)
        s[v] = _mm512_setzero_pd();
    for (k = 0; k < m; k++) {
        const __m512d d = _mm512_set1_pd(D[k * ldd]);
        const double *a = A[k] + j0;
        for (v = 0; v < nv - 1; v++)                /* nabla_w + delta a^T */
            s[v] = _mm512_add_pd(s[v], _mm512_mul_pd(d, _mm512_loadu_pd(a + 8 * v)));
        s[v] = _mm512_add_pd(s[v], _mm512_mul_pd(d, _mm512_maskz_loadu_pd(last, a + 8 * v)));
    }
    for (v = 0; v < nv; v++) {
        /* (1-eta*(lmbda/n))*w - (eta/m)*nabla_w */
        const __mmask8 mask = v < nv - 1 ? 0xff : last;
        const __m512d x = _mm512_sub_pd(
            _mm512_mul_pd(decay, _mm512_maskz_loadu_pd(mask, W + 8 * v)),
            _mm512_mul_pd(c, s[v]));
        _mm512_mask_storeu_pd(W_new + 8 * v, mask, x);
        /* !(|x| <= limit): also true for NaN */
        bad |= _mm512_mask_cmp_pd_mask(mask, _mm512_abs_pd(x), limit, _CMP_NLE_UQ);
    }
    return bad != 0;
}

/* The driver of the AVX-512 and AVX2 steps: as book_weight_step_portable,
 * column chunks of CHUNK outside, rows inside.  For each chunk, nv vectors
 * of LANES columns cover its w columns; CHUNK_SETUP declares what the chunk
 * needs (its last vector's mask), and CASE(NV) is the switch case that
 * steps row i's wn (new) from wo with a constant count NV of vectors. */
#define BOOK_CHUNKS(CHUNK, LANES, CHUNK_SETUP, CASE)                                 \
    for (j0 = 0; j0 < n_in; j0 += (CHUNK)) {                                        \
        w = n_in - j0 < (CHUNK) ? n_in - j0 : (CHUNK);                              \
        const int nv = (int)((w + (LANES) - 1) / (LANES));                          \
        CHUNK_SETUP;                                                                \
        for (i = 0; i < n_out; i++) {                                               \
            double *wn = W_new + i * n_in + j0;                                     \
            const double *wo = W + i * n_in + j0;                                   \
            switch (nv) {                                                           \
            CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)         \
            default: break;                                                         \
            }                                                                       \
        }                                                                           \
    }

BOOK_AVX512 static int book_weight_step_avx512(double *W_new, const double *W,
                                               const double *D, ptrdiff_t ldd,
                                               const double *const *A, ptrdiff_t m,
                                               ptrdiff_t n_out, ptrdiff_t n_in,
                                               double decay, double c, double limit)
{
    const __m512d decay_v = _mm512_set1_pd(decay), c_v = _mm512_set1_pd(c);
    const __m512d limit_v = _mm512_set1_pd(limit);
    ptrdiff_t i, j0, w;
    int bad = 0;
#define BOOK_CASE(NV)                                                               \
            case NV:                                                                \
                bad |= book_weight_vectors(wn, wo, D + i, ldd, A, j0, m, NV, last,      \
                                           decay_v, c_v, limit_v);                  \
                break;
    BOOK_CHUNKS(BOOK_CHUNK, 8,
                const __mmask8 last = w % 8 ? (__mmask8)((1u << (w % 8)) - 1) : 0xff,
                BOOK_CASE)
#undef BOOK_CASE
    return !bad;
}

#define BOOK_AVX2 __attribute__((target("avx2")))
/* AVX2's 16 registers hold the sums of 32 columns (8 vectors of 4) with
 * room for the loads. */
#define BOOK_CHUNK_AVX2 32

/* book_weight_vectors for AVX2: the same sums and step in 4-lane vectors,
 * nv of them, the last one cut to the lanes of `last` where masked (nv and
 * masked constants where inlined).  Only that vector is read and written
 * with vmaskmov, which touches no memory in the lanes off: with every
 * vector masked, the step alone (10 samples, 784 columns) took about 1.5
 * times as long on an AMD EPYC (Zen 3). */
BOOK_INLINE BOOK_AVX2 int book_weight_vectors_avx2(double *W_new, const double *W,
                                                   const double *D, ptrdiff_t ldd,
                                                   const double *const *A, ptrdiff_t j0,
                                                   ptrdiff_t m, const int nv,
                                                   const int masked, __m256i last,
                                                   __m256d decay, __m256d c, __m256d limit)
{
    const __m256d sign = _mm256_set1_pd(-0.0);
    __m256d s[BOOK_CHUNK_AVX2 / 4], bad = _mm256_setzero_pd();
    ptrdiff_t k;
    int v;
#define BOOK_LOAD(v, p) (masked && (v) == nv - 1 ? _mm256_maskload_pd(p, last) \
                                                 : _mm256_loadu_pd(p))
    for (v = 0; v < nv; v++)
        s[v] = _mm256_setzero_pd();
    for (k = 0; k < m; k++) {
        const __m256d d = _mm256_set1_pd(D[k * ldd]);
        const double *a = A[k] + j0;
        for (v = 0; v < nv; v++)                    /* nabla_w + delta a^T */
            s[v] = _mm256_add_pd(s[v], _mm256_mul_pd(d, BOOK_LOAD(v, a + 4 * v)));
    }
    for (v = 0; v < nv; v++) {
        /* (1-eta*(lmbda/n))*w - (eta/m)*nabla_w */
        __m256d x = _mm256_sub_pd(_mm256_mul_pd(decay, BOOK_LOAD(v, W + 4 * v)),
                                  _mm256_mul_pd(c, s[v]));
        /* !(|x| <= limit): also true for NaN */
        __m256d out = _mm256_cmp_pd(_mm256_andnot_pd(sign, x), limit, _CMP_NLE_UQ);
        if (masked && v == nv - 1) {
            _mm256_maskstore_pd(W_new + 4 * v, last, x);
            out = _mm256_and_pd(out, _mm256_castsi256_pd(last));   /* lanes off: fine */
        } else {
            _mm256_storeu_pd(W_new + 4 * v, x);
        }
        bad = _mm256_or_pd(bad, out);
    }
#undef BOOK_LOAD
    return _mm256_movemask_pd(bad) != 0;
}

BOOK_AVX2 static int book_weight_step_avx2(double *W_new, const double *W, const double *D,
                                           ptrdiff_t ldd, const double *const *A,
                                           ptrdiff_t m, ptrdiff_t n_out, ptrdiff_t n_in,
                                           double decay, double c, double limit)
{
    static const long long lanes[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
    const __m256d decay_v = _mm256_set1_pd(decay), c_v = _mm256_set1_pd(c);
    const __m256d limit_v = _mm256_set1_pd(limit);
    ptrdiff_t i, j0, w;
    int bad = 0;
    /* a case for each count of vectors, and for whether the last is cut */
#define BOOK_CALL(NV, MASKED)                                                       \
            book_weight_vectors_avx2(wn, wo, D + i, ldd, A, j0, m, NV, MASKED, last, \
                                     decay_v, c_v, limit_v)
#define BOOK_CASE(NV)                                                               \
            case NV:                                                                \
                bad |= masked ? BOOK_CALL(NV, 1) : BOOK_CALL(NV, 0);                \
                break;
    /* the last vector's mask: the first w % 4 lanes */
    BOOK_CHUNKS(BOOK_CHUNK_AVX2, 4,
                const int masked = w % 4 != 0;
                const __m256i last = _mm256_loadu_si256((const __m256i *)(lanes + 4 - w % 4)),
                BOOK_CASE)
#undef BOOK_CASE
#undef BOOK_CALL
    return !bad;
}
#undef BOOK_CHUNKS
#endif

int fbp_book_step_variant(void)
{
#if defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return FBP_BOOK_AVX512;
    if (__builtin_cpu_supports("avx2"))
        return FBP_BOOK_AVX2;
#endif
    return FBP_BOOK_PORTABLE;
}

int fbp_book_weight_step(double *W_new, const double *W, const double *D,
                         ptrdiff_t ldd, const double *const *A, ptrdiff_t m,
                         ptrdiff_t n_out, ptrdiff_t n_in, double decay,
                         double c, double limit, int variant)
{
#if defined(__GNUC__) && defined(__x86_64__)
    if (variant == FBP_BOOK_AVX512)
        return book_weight_step_avx512(W_new, W, D, ldd, A, m, n_out, n_in, decay, c,
                                       limit);
    if (variant == FBP_BOOK_AVX2)
        return book_weight_step_avx2(W_new, W, D, ldd, A, m, n_out, n_in, decay, c,
                                     limit);
#else
    (void)variant;
#endif
    return book_weight_step_portable(W_new, W, D, ldd, A, m, n_out, n_in, decay, c,
                                     limit);
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
