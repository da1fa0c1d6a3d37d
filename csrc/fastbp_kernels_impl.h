/*
 * Body of the kernels declared in fastbp_kernels.h, written once for a
 * generic REAL and included by fastbp_kernels.c for double and for float.
 * Expects REAL, S (the name suffix), EXP, LOG, TANH, FABS, ISNAN, REAL_MAX.
 * Deliberately no include guard: it is included once per type.
 */
#define FBP_CAT_(a, b) a##b
#define FBP_CAT(a, b) FBP_CAT_(a, b)
#define FBP_NAME(name) FBP_CAT(name, S)

/* A running max of |x| that a NaN poisons for good: once m is NaN both
 * comparisons are false and it stays NaN. */
#define FBP_ABSMAX(m, x)                                                       \
    do {                                                                       \
        REAL ax_ = FABS(x);                                                    \
        if (ax_ > (m) || ax_ != ax_) (m) = ax_;                                \
    } while (0)

REAL FBP_NAME(fbp_activate)(int act, REAL *A, const REAL *b,
                            ptrdiff_t m, ptrdiff_t n)
{
    REAL zmax = 0;
    ptrdiff_t i, j;
    for (i = 0; i < m; i++) {
        REAL *z = A + i * n;
        for (j = 0; j < n; j++) {
            REAL v = z[j] + b[j];          /* z = w a + b */
            FBP_ABSMAX(zmax, v);
            switch (act) {
            case FBP_SIGMOID: z[j] = (REAL)1 / ((REAL)1 + EXP(-v)); break;
            case FBP_TANH:    z[j] = TANH(v); break;
            /* v * 0 keeps a NaN (and turns -inf into NaN) so that a
             * diverging network is seen, where max(v, 0) would hide it. */
            case FBP_RELU:    z[j] = v > 0 ? v : v * (REAL)0; break;
            default:          z[j] = v; break;     /* linear */
            }
        }
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

REAL FBP_NAME(fbp_times_derivative)(int act, REAL *D, const REAL *A,
                                    ptrdiff_t m, ptrdiff_t n)
{
    REAL dmax = 0;
    ptrdiff_t k, len = m * n;
    if (act == FBP_SIGMOID) {
        /* The common case, written out so the compiler vectorizes it. */
        for (k = 0; k < len; k++)
            D[k] *= A[k] * ((REAL)1 - A[k]);
    } else if (act != FBP_LINEAR) {
        for (k = 0; k < len; k++)
            D[k] *= FBP_NAME(fbp_derivative_from_a)(act, A[k]);
    }
    for (k = 0; k < len; k++)
        FBP_ABSMAX(dmax, D[k]);
    return dmax;
}

REAL FBP_NAME(fbp_output_error)(int cost, int act, REAL *D, const REAL *A,
                                const REAL *Y, ptrdiff_t m, ptrdiff_t n)
{
    REAL dmax = 0;
    ptrdiff_t k, len = m * n;
    if (cost == FBP_CROSS_ENTROPY && act == FBP_SIGMOID) {
        /* sigma' cancels: delta^L = a^L - y. */
        for (k = 0; k < len; k++)
            D[k] = A[k] - Y[k];
    } else if (cost == FBP_CROSS_ENTROPY) {
        /* dC/da = (a - y) / (a (1 - a)), times f'(z). */
        for (k = 0; k < len; k++)
            D[k] = (A[k] - Y[k]) / (A[k] * ((REAL)1 - A[k]))
                   * FBP_NAME(fbp_derivative_from_a)(act, A[k]);
    } else if (act == FBP_SIGMOID) {
        /* BP1, quadratic cost: (a - y) (.) sigma'(z). */
        for (k = 0; k < len; k++)
            D[k] = (A[k] - Y[k]) * (A[k] * ((REAL)1 - A[k]));
    } else {
        for (k = 0; k < len; k++)
            D[k] = (A[k] - Y[k]) * FBP_NAME(fbp_derivative_from_a)(act, A[k]);
    }
    for (k = 0; k < len; k++)
        FBP_ABSMAX(dmax, D[k]);
    return dmax;
}

void FBP_NAME(fbp_bias_update)(REAL *b, const REAL *D, ptrdiff_t m,
                               ptrdiff_t n, REAL alpha, REAL beta)
{
    ptrdiff_t i, j;
    for (j = 0; j < n; j++)
        b[j] *= beta;
    for (i = 0; i < m; i++) {
        const REAL *d = D + i * n;
        for (j = 0; j < n; j++)
            b[j] += alpha * d[j];
    }
}

void FBP_NAME(fbp_gather_rows)(REAL *out, const REAL *X,
                               const ptrdiff_t *rows, ptrdiff_t m, ptrdiff_t n)
{
    ptrdiff_t i;
    for (i = 0; i < m; i++)
        memcpy(out + i * n, X + rows[i] * n, (size_t)n * sizeof(REAL));
}

REAL FBP_NAME(fbp_max_abs)(const REAL *x, ptrdiff_t n)
{
    REAL mx = 0;
    ptrdiff_t k;
    for (k = 0; k < n; k++)
        FBP_ABSMAX(mx, x[k]);
    return mx;
}

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
            if (ISNAN(t))
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

#undef FBP_ABSMAX
#undef FBP_NAME
#undef FBP_CAT
#undef FBP_CAT_
