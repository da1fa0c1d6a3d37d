/*
 * Body of the kernels declared in fastbp_small_gemm.h, written once for a
 * generic REAL and included by fastbp_small_gemm.c for double and for
 * float.  Expects REAL, S (the name suffix), VEC (AVX-512's vector of REAL),
 * NL (REALs in a vector), SCALAR_FMA, and the intrinsics as V_LOADU,
 * V_STOREU, V_SET1, V_ZERO, V_MUL and V_FMADD; the helpers tile_step and
 * prefetch_lines, and NT_S, NT_R, TN_R, TN_C, TARGET and INLINE.
 * Deliberately no include guard: it is included once per type.
 */
#define FBP_SG_CAT_(a, b) a##b
#define FBP_SG_CAT(a, b) FBP_SG_CAT_(a, b)
#define FBP_SG(name) FBP_SG_CAT(name, S)

/* The lanes of v added in a fixed order: halves, then quarters, ... */
INLINE REAL FBP_SG(hsum)(VEC v)
{
    REAL t[NL];
    int w, q;
    V_STOREU(t, v);
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
INLINE void FBP_SG(nt_tile)(const int ns, const int nr, ptrdiff_t k, const REAL *const *A,
                            const REAL *W, ptrdiff_t ldw, REAL *Z, ptrdiff_t ldz)
{
    VEC acc[NT_S][NT_R], a[NT_S], w[NT_R];
    ptrdiff_t j, jj;
    int s, r;
#pragma GCC unroll 8
    for (s = 0; s < ns; s++)
#pragma GCC unroll 8
        for (r = 0; r < nr; r++)
            acc[s][r] = V_ZERO();
    for (j = 0; j + NL <= k; j += NL) {
#pragma GCC unroll 8
        for (s = 0; s < ns; s++)
            a[s] = V_LOADU(A[s] + j);
#pragma GCC unroll 8
        for (r = 0; r < nr; r++)
            w[r] = V_LOADU(W + r * ldw + j);
#pragma GCC unroll 8
        for (s = 0; s < ns; s++)
#pragma GCC unroll 8
            for (r = 0; r < nr; r++)
                acc[s][r] = V_FMADD(a[s], w[r], acc[s][r]);
    }
#pragma GCC unroll 8
    for (s = 0; s < ns; s++)
#pragma GCC unroll 8
        for (r = 0; r < nr; r++) {
            REAL z = FBP_SG(hsum)(acc[s][r]);
            for (jj = j; jj < k; jj++)
                z = SCALAR_FMA(A[s][jj], W[r * ldw + jj], z);
            Z[s * ldz + r] = z;
        }
}

#define NT_CASE(ns, nr)                                                           \
    case (ns) * 8 + (nr):                                                         \
        FBP_SG(nt_tile)(ns, nr, k, A + s, W + r * ldw, ldw, Z + s * ldz + r, ldz); \
        break;
#define NT_ROWS(ns) NT_CASE(ns, 1) NT_CASE(ns, 2) NT_CASE(ns, 3) NT_CASE(ns, 4)

static TARGET void FBP_SG(nt)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const REAL *const *A,
                              const REAL *W, ptrdiff_t ldw, REAL *Z, ptrdiff_t ldz)
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

#undef NT_ROWS
#undef NT_CASE

/* BP4 tile: W[r, j] <- beta W[r, j] + alpha sum_s D[s, r] A[s][j] for r < nr
 * (<= TN_R, a constant where inlined) and the nc vectors of columns from j0
 * (nc <= TN_C).  The sum runs over s in order, its first product rounded and
 * the others fused; then W <- fma(sum, alpha, beta W), beta W not computed
 * when beta is 1. */
INLINE void FBP_SG(tn_tile)(const int nr, const int nc, ptrdiff_t m, REAL alpha,
                            const REAL *D, ptrdiff_t ldd, const REAL *const *A, ptrdiff_t j0,
                            REAL beta, REAL *W, ptrdiff_t ldw)
{
    VEC acc[TN_R][TN_C], a[TN_C];
    ptrdiff_t s;
    int r, c;
#pragma GCC unroll 8
    for (c = 0; c < nc; c++)
        a[c] = V_LOADU(A[0] + j0 + c * NL);
#pragma GCC unroll 8
    for (r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (c = 0; c < nc; c++)
            acc[r][c] = V_MUL(a[c], V_SET1(D[r]));
    for (s = 1; s < m; s++) {
#pragma GCC unroll 8
        for (c = 0; c < nc; c++)
            a[c] = V_LOADU(A[s] + j0 + c * NL);
#pragma GCC unroll 8
        for (r = 0; r < nr; r++) {
            VEC d = V_SET1(D[s * ldd + r]);
#pragma GCC unroll 8
            for (c = 0; c < nc; c++)
                acc[r][c] = V_FMADD(a[c], d, acc[r][c]);
        }
    }
#pragma GCC unroll 8
    for (r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (c = 0; c < nc; c++) {
            REAL *p = W + r * ldw + j0 + c * NL;
            VEC w = V_LOADU(p);
            if (beta != 1)
                w = V_MUL(w, V_SET1(beta));
            V_STOREU(p, V_FMADD(acc[r][c], V_SET1(alpha), w));
        }
}

/* The same for the single column j, in scalar arithmetic with the same
 * roundings. */
INLINE void FBP_SG(tn_column)(ptrdiff_t n, ptrdiff_t m, REAL alpha, const REAL *D,
                              ptrdiff_t ldd, const REAL *const *A, ptrdiff_t j,
                              REAL beta, REAL *W, ptrdiff_t ldw)
{
    ptrdiff_t r, s;
    for (r = 0; r < n; r++) {
        REAL sum = A[0][j] * D[r], w = W[r * ldw + j];
        for (s = 1; s < m; s++)
            sum = SCALAR_FMA(A[s][j], D[s * ldd + r], sum);
        if (beta != 1)
            w = w * beta;
        W[r * ldw + j] = SCALAR_FMA(sum, alpha, w);
    }
}

#define TN_CASE(nr, nc)                                                                \
    case (nr) * 8 + (nc):                                                              \
        FBP_SG(tn_tile)(nr, nc, m, alpha, D + r, ldd, A, j, beta, W + r * ldw, ldw);   \
        break;
#define TN_ROWS(nr) TN_CASE(nr, 1) TN_CASE(nr, 2) TN_CASE(nr, 3) TN_CASE(nr, 4)

static TARGET void FBP_SG(tn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, REAL alpha,
                              const REAL *D, ptrdiff_t ldd, const REAL *const *A,
                              REAL beta, REAL *W, ptrdiff_t ldw,
                              const REAL *const *next, ptrdiff_t m_next)
{
    ptrdiff_t j, q, r, kv = k - k % NL;
    ptrdiff_t ntiles = (n + TN_R - 1) / TN_R, step = tile_step(ntiles);
    ptrdiff_t blocks = (kv + TN_C * NL - 1) / (TN_C * NL), b = 0;
    ptrdiff_t row_lines = (k * (ptrdiff_t)sizeof(REAL) + 63) / 64;
    if (blocks == 0)
        prefetch_lines((const void *const *)next, m_next, 0, row_lines);
    for (j = 0; j < kv; j += TN_C * NL, b++) {
        int nc = (int)((kv - j) / NL < TN_C ? (kv - j) / NL : TN_C);
        /* this block's share of the next inputs: about k / blocks values a row */
        prefetch_lines((const void *const *)next, m_next, row_lines * b / blocks,
                       row_lines * (b + 1) / blocks);
        for (q = 0; q < ntiles; q++) {
            r = (q * step) % ntiles * TN_R;
            int nr = (int)(n - r < TN_R ? n - r : TN_R);
            switch (nr * 8 + nc) {
            TN_ROWS(1) TN_ROWS(2) TN_ROWS(3) TN_ROWS(4)
            }
        }
    }
    for (j = kv; j < k; j++)
        FBP_SG(tn_column)(n, m, alpha, D, ldd, A, j, beta, W, ldw);
}

#undef TN_ROWS
#undef TN_CASE
#undef FBP_SG
#undef FBP_SG_CAT
#undef FBP_SG_CAT_
