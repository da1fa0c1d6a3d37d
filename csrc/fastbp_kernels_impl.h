/*
 * Body of the kernels declared in fastbp_kernels.h, written once for a
 * generic REAL and included by fastbp_kernels.c for double and for float.
 * Expects REAL, S (the name suffix), LOG, TANH, FABS, REAL_MAX and the
 * constants of FBP_EXP below.  Deliberately no include guard: it is
 * included once per type.
 *
 * Sub-matrices: the kernels that take "ld" arguments work on m rows of n
 * columns whose rows lie ld elements apart, so that one thread can work on
 * its own block of columns of a shared matrix.
 */
#define FBP_CAT_(a, b) a##b
#define FBP_CAT(a, b) FBP_CAT_(a, b)
#define FBP_NAME(name) FBP_CAT(name, S)

/* max |x| over a row of n values, NaN if any is NaN: two reductions that
 * the compiler can vectorize (the max alone would skip a NaN). */
static inline REAL FBP_NAME(fbp_row_max_abs)(const REAL *x, ptrdiff_t n)
{
    REAL mx = 0;
    int has_nan = 0;
    ptrdiff_t k;
#pragma omp simd reduction(max:mx) reduction(|:has_nan)
    for (k = 0; k < n; k++) {
        REAL ax = FABS(x[k]);
        mx = ax > mx ? ax : mx;
        has_nan |= (x[k] != x[k]);
    }
    return has_nan ? (REAL)NAN : mx;
}

/* A running max that a NaN poisons for good. */
static inline REAL FBP_NAME(fbp_max_nan)(REAL m, REAL x)
{
    return (x > m || x != x) ? x : m;
}

/* e^x for the sigmoid, in plain arithmetic the compiler can vectorize:
 * e^x = 2^k e^r with k = round(x / ln 2) and |r| <= ln(2)/2, e^r by its
 * Taylor series (truncation error below half an ulp), and 2^k applied as
 * two factors 2^k1 2^k2, k1 = floor(k / 2), each a normal number built
 * from its bits.  k is read out of kr's bits, where adding EXP_ROUND left
 * it, not converted from kf: AVX2 has no conversion between doubles and
 * 64-bit integers, and with one the double loop ran one value at a time.
 * Arguments below EXP_LO are raised to it (e^EXP_LO is negligible next to 1
 * in 1 + e^x); above EXP_HI the result is +inf, as for libm's exp. */
static inline REAL FBP_NAME(fbp_exp)(REAL x)
{
    const REAL round = EXP_ROUND;
    REAL t = x < EXP_LO ? EXP_LO : (x > EXP_HI ? EXP_HI : x);
    REAL kr = t * (REAL)1.4426950408889634 + round;   /* EXP_ROUND + k, exactly */
    REAL kf = kr - round;
    REAL r = (t - kf * (REAL)LN2_HI) - kf * (REAL)LN2_LO;
    UINT kr_bits, round_bits, kb, e1, e2;
    REAL s1, s2;
    memcpy(&kr_bits, &kr, sizeof kr);
    memcpy(&round_bits, &round, sizeof round);
    /* the biased exponents of 2^k1 and 2^k2, both within [1, 2 EXP_BIAS]
     * for k in [EXP_LO, EXP_HI] / ln 2 */
    kb = kr_bits - round_bits + 2 * EXP_BIAS;         /* k + 2 EXP_BIAS >= 0 */
    e1 = kb >> 1;
    e2 = kb - e1;
    e1 <<= EXP_SHIFT;
    e2 <<= EXP_SHIFT;
    memcpy(&s1, &e1, sizeof s1);
    memcpy(&s2, &e2, sizeof s2);
    REAL p = EXP_POLY(r) * s1 * s2;
    return x > EXP_HI ? (REAL)INFINITY : (x != x ? x : p);
}

/* z <- f(z) for n values in a row. */
static inline void FBP_NAME(fbp_activate_run)(int act, REAL *z, ptrdiff_t n)
{
    ptrdiff_t j;
    switch (act) {
    case FBP_SIGMOID:
        for (j = 0; j < n; j++)
            z[j] = (REAL)1 / ((REAL)1 + FBP_NAME(fbp_exp)(-z[j]));
        break;
    case FBP_TANH:
        for (j = 0; j < n; j++)
            z[j] = TANH(z[j]);
        break;
    case FBP_RELU:
        /* v * 0 keeps a NaN (and turns -inf into NaN) so that a diverging
         * network is seen, where max(v, 0) would hide it. */
        for (j = 0; j < n; j++)
            z[j] = z[j] > 0 ? z[j] : z[j] * (REAL)0;
        break;
    default:                               /* linear */
        break;
    }
}

/* A block of at most ACT_FLAT values is activated (or, in
 * fbp_times_derivative, multiplied by f') as one run in a scratch row: a
 * thread's block of a narrow layer has rows of 10 to 16 values, and a
 * vectorized loop over such a row leaves much of it to its scalar
 * remainder (in W1's epoch loop, the thread with 14 of the hidden neurons
 * and the 10 outputs spent several times as long activating as the one
 * with 16).  Each value goes through the same operations either way. */
#define ACT_FLAT 1024

/* The m x n block M (rows ld apart) into the run of m * n values r ... */
static inline void FBP_NAME(fbp_pack)(REAL *r, const REAL *M, ptrdiff_t ld, ptrdiff_t m,
                                      ptrdiff_t n)
{
    ptrdiff_t i, j;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++)
            r[i * n + j] = M[i * ld + j];
}

/* ... and back. */
static inline void FBP_NAME(fbp_unpack)(REAL *M, ptrdiff_t ld, const REAL *r, ptrdiff_t m,
                                        ptrdiff_t n)
{
    ptrdiff_t i, j;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++)
            M[i * ld + j] = r[i * n + j];
}

FBP_CLONES
REAL FBP_NAME(fbp_activate)(int act, REAL *A, ptrdiff_t lda, const REAL *b,
                            ptrdiff_t m, ptrdiff_t n)
{
    REAL zmax = 0;
    ptrdiff_t i, j;
    if (m * n <= ACT_FLAT) {
        REAL t[ACT_FLAT];
        FBP_NAME(fbp_pack)(t, A, lda, m, n);
        for (i = 0; i < m; i++)
            for (j = 0; j < n; j++)        /* z = w a + b */
                t[i * n + j] += b[j];
        zmax = FBP_NAME(fbp_row_max_abs)(t, m * n);
        FBP_NAME(fbp_activate_run)(act, t, m * n);
        FBP_NAME(fbp_unpack)(A, lda, t, m, n);
        return zmax;
    }
    for (i = 0; i < m; i++) {
        REAL *z = A + i * lda;
        for (j = 0; j < n; j++)            /* z = w a + b */
            z[j] += b[j];
        zmax = FBP_NAME(fbp_max_nan)(zmax, FBP_NAME(fbp_row_max_abs)(z, n));
        FBP_NAME(fbp_activate_run)(act, z, n);
    }
    return zmax;
}

/* f'(z) written in terms of a = f(z), so that z need not be kept. */
static inline REAL FBP_NAME(fbp_derivative_from_a)(int act, REAL a)
{
    switch (act) {
    case FBP_SIGMOID: return a * ((REAL)1 - a);   /* s'(z) = s(z)(1 - s(z)) */
    case FBP_TANH:    return (REAL)1 - a * a;     /* tanh' = 1 - tanh^2 */
    case FBP_RELU:    return a > 0 ? (REAL)1 : (REAL)0;
    default:          return (REAL)1;             /* linear */
    }
}

/* d <- d (.) f'(z) for n values in a row, f' from a = f(z). */
static inline void FBP_NAME(fbp_times_derivative_run)(int act, REAL *d, const REAL *a,
                                                      ptrdiff_t n)
{
    ptrdiff_t j;
    if (act == FBP_SIGMOID) {              /* the common case, vectorized */
        for (j = 0; j < n; j++)
            d[j] *= a[j] * ((REAL)1 - a[j]);
    } else if (act != FBP_LINEAR) {
        for (j = 0; j < n; j++)
            d[j] *= FBP_NAME(fbp_derivative_from_a)(act, a[j]);
    }
}

FBP_CLONES
REAL FBP_NAME(fbp_times_derivative)(int act, REAL *D, ptrdiff_t ldd,
                                    const REAL *A, ptrdiff_t lda,
                                    ptrdiff_t m, ptrdiff_t n)
{
    REAL dmax = 0;
    ptrdiff_t i;
    if (ldd == n && lda == n) {            /* one run: the rows follow each other */
        n *= m;
        m = 1;
    } else if (m * n <= ACT_FLAT) {        /* one run in scratch rows, as fbp_activate */
        REAL td[ACT_FLAT], ta[ACT_FLAT];
        FBP_NAME(fbp_pack)(td, D, ldd, m, n);
        FBP_NAME(fbp_pack)(ta, A, lda, m, n);
        FBP_NAME(fbp_times_derivative_run)(act, td, ta, m * n);
        FBP_NAME(fbp_unpack)(D, ldd, td, m, n);
        return FBP_NAME(fbp_row_max_abs)(td, m * n);
    }
    for (i = 0; i < m; i++) {
        REAL *d = D + i * ldd;
        FBP_NAME(fbp_times_derivative_run)(act, d, A + i * lda, n);
        dmax = FBP_NAME(fbp_max_nan)(dmax, FBP_NAME(fbp_row_max_abs)(d, n));
    }
    return dmax;
}

FBP_CLONES
REAL FBP_NAME(fbp_output_error)(int cost, int act, REAL *D, ptrdiff_t ldd,
                                const REAL *A, ptrdiff_t lda,
                                const REAL *Y, ptrdiff_t ldy,
                                ptrdiff_t m, ptrdiff_t n)
{
    REAL dmax = 0;
    ptrdiff_t i, j;
    if (ldd == n && lda == n && ldy == n) {    /* one run: the rows follow each other */
        n *= m;
        m = 1;
    }
    for (i = 0; i < m; i++) {
        REAL *d = D + i * ldd;
        const REAL *a = A + i * lda, *y = Y + i * ldy;
        if (cost == FBP_CROSS_ENTROPY) {
            /* With a sigmoid output (the only one the engine takes it
             * with), sigma' cancels: delta^L = a^L - y. */
            for (j = 0; j < n; j++)
                d[j] = a[j] - y[j];
        } else if (act == FBP_SIGMOID) {
            /* BP1, quadratic cost: (a - y) (.) sigma'(z). */
            for (j = 0; j < n; j++)
                d[j] = (a[j] - y[j]) * (a[j] * ((REAL)1 - a[j]));
        } else {
            for (j = 0; j < n; j++)
                d[j] = (a[j] - y[j]) * FBP_NAME(fbp_derivative_from_a)(act, a[j]);
        }
        dmax = FBP_NAME(fbp_max_nan)(dmax, FBP_NAME(fbp_row_max_abs)(d, n));
    }
    return dmax;
}

FBP_CLONES
void FBP_NAME(fbp_bias_update)(REAL *b, const REAL *D, ptrdiff_t ldd,
                               ptrdiff_t m, ptrdiff_t n, REAL alpha, REAL beta)
{
    ptrdiff_t i, j;
    for (j = 0; j < n; j++)
        b[j] *= beta;
    for (i = 0; i < m; i++) {
        const REAL *d = D + i * ldd;
        for (j = 0; j < n; j++)
            b[j] += alpha * d[j];
    }
}

void FBP_NAME(fbp_gather_rows)(REAL *out, const void *const *rows,
                               const ptrdiff_t *order, int single,
                               ptrdiff_t m, ptrdiff_t n)
{
    ptrdiff_t i, j;
    for (i = 0; i < m; i++) {
        const void *src = rows[order[i]];
        REAL *dst = out + i * n;
        if (single == (sizeof(REAL) == sizeof(float))) {
            memcpy(dst, src, (size_t)n * sizeof(REAL));
        } else if (single) {
            const float *x = (const float *)src;
            for (j = 0; j < n; j++)
                dst[j] = (REAL)x[j];
        } else {
            const double *x = (const double *)src;
            for (j = 0; j < n; j++)
                dst[j] = (REAL)x[j];
        }
    }
}

FBP_CLONES
REAL FBP_NAME(fbp_max_abs)(const REAL *x, ptrdiff_t n)
{
    return FBP_NAME(fbp_row_max_abs)(x, n);
}

/* The rows of a data set in a shuffled list lie anywhere in memory: read
 * one after the other, each starts with a wait for memory, and the
 * processor's own prefetching starts anew in each.  So the row about
 * ROWS_AHEAD bytes further on is fetched while this one is scanned. */
#define ROWS_AHEAD 8192

FBP_CLONES
REAL FBP_NAME(fbp_rows_max_abs)(const REAL *const *rows, ptrdiff_t n, ptrdiff_t width)
{
    const size_t bytes = (size_t)width * sizeof(REAL);
    const ptrdiff_t ahead = bytes >= ROWS_AHEAD ? 1 : (ptrdiff_t)(ROWS_AHEAD / bytes);
    REAL m = 0;
    ptrdiff_t i;
    for (i = 0; i < n; i++) {
        if (i + ahead < n) {
            /* every line the row touches, from the one it starts in */
            const char *row = (const char *)rows[i + ahead], *end = row + bytes;
            const char *p;
            for (p = row - (size_t)row % 64; p < end; p += 64)
                FBP_PREFETCH(p);
        }
        m = FBP_NAME(fbp_max_nan)(m, FBP_NAME(fbp_row_max_abs)(rows[i], width));
    }
    return m;
}
#undef ROWS_AHEAD

double FBP_NAME(fbp_cost_sum)(int cost, const REAL *A, const REAL *Y,
                              ptrdiff_t m, ptrdiff_t n)
{
    double total = 0;
    ptrdiff_t k, len = m * n;
    if (cost == FBP_CROSS_ENTROPY) {
        /* sum of nan_to_num(-y ln a - (1 - y) ln(1 - a)) */
        for (k = 0; k < len; k++) {
            REAL a = A[k], y = Y[k];
            REAL t = -y * LOG(a) - ((REAL)1 - y) * LOG((REAL)1 - a);
            if (t != t)
                t = 0;
            else if (t > REAL_MAX)
                t = REAL_MAX;
            else if (t < -REAL_MAX)
                t = -REAL_MAX;
            total += (double)t;
        }
    } else {
        /* sum over samples of 0.5 ||a - y||^2 */
        for (k = 0; k < len; k++) {
            double e = (double)A[k] - (double)Y[k];
            total += 0.5 * e * e;
        }
    }
    return total;
}

void FBP_NAME(fbp_argmax_rows)(ptrdiff_t *out, const REAL *A, ptrdiff_t m,
                               ptrdiff_t n)
{
    ptrdiff_t i, j;
    for (i = 0; i < m; i++) {
        const REAL *a = A + i * n;
        ptrdiff_t best = 0;
        for (j = 1; j < n; j++)
            if (a[j] > a[best])
                best = j;
        out[i] = best;
    }
}

#undef FBP_NAME
#undef FBP_CAT
#undef FBP_CAT_
#undef ACT_FLAT
