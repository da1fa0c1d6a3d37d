/*
 * Body of the kernels declared in fastbp_small_gemm.h, written once for a
 * generic REAL and vector, and included by fastbp_small_gemm.c for each
 * instruction set (AVX-512, AVX2) and each of double and float.  Expects
 * REAL, S (the type's name suffix), ISA (the instruction set's), VEC (a
 * vector of REAL), NL (REALs in a vector), MASK (a mask of lanes), and as
 * macros V_LOADU, V_MASKZ_LOADU, V_STOREU, V_MASK_STOREU, V_SET1, V_ZERO,
 * V_MUL, V_FMADD, V_HSUM and V_FIRST_LANES (the mask of the first n lanes,
 * 0 < n <= NL); the helpers tile_step and prefetch_lines, and NT_S, NT_R,
 * TN_R, TN_C, NN_S, NN_C, COMB_X, COMB_C (the instruction set's tiles, at
 * most 5 x 4 for the feedforward and BP4 tiles and 5 x 3 for BP2's),
 * TARGET and INLINE.
 *
 * A row's last k % NL values are handled by masked loads and stores, which
 * touch no memory in the lanes masked off.
 * Deliberately no include guard: it is included once per type, and it
 * undefines those parameters at its end.
 */
#define FBP_SG_CAT_(a, b, c) a##b##c
#define FBP_SG_CAT(a, b, c) FBP_SG_CAT_(a, b, c)
#define FBP_SG(name) FBP_SG_CAT(name, S, ISA)

/* Tile q of `count` items cut into `tiles` tiles as even as they can be,
 * the first count % tiles one larger (16 rows into 6: 3, 3, 3, 3, 2, 2;
 * not ..., 3, 1, where the small tile has too few sums to keep the
 * multiply-add units busy): its first item and its size, without a
 * division (base = count / tiles, extra = count % tiles). */
#define FBP_SG_TILE_START(q, base, extra) ((q) * (base) + ((q) < (extra) ? (q) : (extra)))
#define FBP_SG_TILE_SIZE(q, base, extra) ((int)((base) + ((q) < (extra))))

/* The lanes of v added in a fixed order: halves, then quarters, ... down
 * to one lane, in vector registers (V_HSUM). */
INLINE REAL FBP_SG(hsum)(VEC v)
{
    return V_HSUM(v);
}

/* Feedforward tile: Z[s, r] = sum_j A[s][j] W[r, j] for s < ns, r < nr
 * (ns <= NT_S, nr <= NT_R, constants where inlined).  Lane q of a sum adds
 * the products of j = q, q + NL, q + 2 NL, ... in order with fused
 * multiply-adds (the last k % NL products in a masked step), then hsum adds
 * the lanes.  So every Z[s, r] is rounded the same way, whatever tile holds
 * it. */
INLINE void FBP_SG(nt_tile)(const int ns, const int nr, ptrdiff_t k, const REAL *const *A,
                            const REAL *W, ptrdiff_t ldw, REAL *Z, ptrdiff_t ldz)
{
    VEC acc[NT_S][NT_R], a[NT_S], w[NT_R];
    ptrdiff_t j;
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
    if (j < k) {
        MASK tail = V_FIRST_LANES(k - j);
#pragma GCC unroll 8
        for (s = 0; s < ns; s++)
            a[s] = V_MASKZ_LOADU(tail, A[s] + j);
#pragma GCC unroll 8
        for (r = 0; r < nr; r++)
            w[r] = V_MASKZ_LOADU(tail, W + r * ldw + j);
#pragma GCC unroll 8
        for (s = 0; s < ns; s++)
#pragma GCC unroll 8
            for (r = 0; r < nr; r++)
                acc[s][r] = V_FMADD(a[s], w[r], acc[s][r]);
    }
#pragma GCC unroll 8
    for (s = 0; s < ns; s++)
#pragma GCC unroll 8
        for (r = 0; r < nr; r++)
            Z[s * ldz + r] = FBP_SG(hsum)(acc[s][r]);
}

/* One case for each tile shape up to 5 x 4; those larger than this
 * instruction set's tiles never happen and compile to nothing. */
#define NT_CASE(ns, nr)                                                           \
    case (ns) * 8 + (nr):                                                         \
        if ((ns) <= NT_S && (nr) <= NT_R)                                         \
            FBP_SG(nt_tile)(ns, nr, k, A + s, W + r * ldw, ldw, Z + s * ldz + r,  \
                            ldz);                                                 \
        break;
#define NT_ROWS(ns) NT_CASE(ns, 1) NT_CASE(ns, 2) NT_CASE(ns, 3) NT_CASE(ns, 4)

/* The samples and the rows in as few tiles as NT_S and NT_R allow, cut
 * evenly (10 samples into 4, 3, 3 with AVX2's tiles): W1's feedforward
 * took about 4-9% less time than with tiles of NT_S and NT_R and a short
 * last one, in a C harness. */
static TARGET void FBP_SG(nt)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const REAL *const *A,
                              const REAL *W, ptrdiff_t ldw, REAL *Z, ptrdiff_t ldz)
{
    const ptrdiff_t s_tiles = (m + NT_S - 1) / NT_S, r_tiles = (n + NT_R - 1) / NT_R;
    const ptrdiff_t s_base = m / s_tiles, s_extra = m % s_tiles;
    const ptrdiff_t r_base = n / r_tiles, r_extra = n % r_tiles;
    ptrdiff_t i, q, s, r;
    for (i = 0; i < s_tiles; i++) {
        s = FBP_SG_TILE_START(i, s_base, s_extra);
        int ns = FBP_SG_TILE_SIZE(i, s_base, s_extra);
        for (q = 0; q < r_tiles; q++) {
            r = FBP_SG_TILE_START(q, r_base, r_extra);
            int nr = FBP_SG_TILE_SIZE(q, r_base, r_extra);
            switch (ns * 8 + nr) {
            NT_ROWS(1) NT_ROWS(2) NT_ROWS(3) NT_ROWS(4) NT_ROWS(5)
            }
        }
    }
}

#undef NT_ROWS
#undef NT_CASE

/* The tile of BP4 and BP2: rows x < nx of a result (nx <= COMB_X, a
 * constant where inlined), on the nc vectors of columns from j0 (nc <=
 * COMB_C), each the combination of nt rows
 *
 *   sum_t C[t ct + x cx] row_t[j0 ..]   row_t = rows[t], or base + t ldb
 *                                       where strided
 *
 * summed over t in order, its first product rounded and the others fused.
 * With update, out[x] <- fma(sum, alpha, beta out[x]) (beta out[x] not
 * computed when beta is 1), else out[x] <- sum.  The last vector is cut to
 * the lanes of `last` where masked.  strided, update and masked are
 * constants where inlined. */
INLINE void FBP_SG(comb_tile)(const int nx, const int nc, ptrdiff_t nt, const REAL *C,
                              ptrdiff_t ct, ptrdiff_t cx, const int strided,
                              const REAL *const *rows, const REAL *base, ptrdiff_t ldb,
                              ptrdiff_t j0, const int update, REAL alpha, REAL beta,
                              REAL *out, ptrdiff_t ldo, const int masked, MASK last)
{
    VEC acc[COMB_X][COMB_C], a[COMB_C];
    ptrdiff_t t;
    int x, c;
#define COMB_ROW(t) ((strided ? base + (t) * ldb : rows[t]) + j0)
#define COMB_LOAD(c, p) (masked && (c) == nc - 1 ? V_MASKZ_LOADU(last, p) : V_LOADU(p))
#pragma GCC unroll 8
    for (c = 0; c < nc; c++)
        a[c] = COMB_LOAD(c, COMB_ROW(0) + c * NL);
#pragma GCC unroll 8
    for (x = 0; x < nx; x++)
#pragma GCC unroll 8
        for (c = 0; c < nc; c++)
            acc[x][c] = V_MUL(a[c], V_SET1(C[x * cx]));
    for (t = 1; t < nt; t++) {
#pragma GCC unroll 8
        for (c = 0; c < nc; c++)
            a[c] = COMB_LOAD(c, COMB_ROW(t) + c * NL);
#pragma GCC unroll 8
        for (x = 0; x < nx; x++) {
            VEC d = V_SET1(C[t * ct + x * cx]);
#pragma GCC unroll 8
            for (c = 0; c < nc; c++)
                acc[x][c] = V_FMADD(a[c], d, acc[x][c]);
        }
    }
#pragma GCC unroll 8
    for (x = 0; x < nx; x++)
#pragma GCC unroll 8
        for (c = 0; c < nc; c++) {
            REAL *p = out + x * ldo + j0 + c * NL;
            VEC v = acc[x][c];
            if (update) {
                VEC w = COMB_LOAD(c, p);
                if (beta != 1)
                    w = V_MUL(w, V_SET1(beta));
                v = V_FMADD(v, V_SET1(alpha), w);
            }
            if (masked && c == nc - 1)
                V_MASK_STOREU(p, last, v);
            else
                V_STOREU(p, v);
        }
#undef COMB_LOAD
#undef COMB_ROW
}

/* BP4 (W <- beta W + alpha D^T A): row x of the tile is row r + x of W, the
 * combination of the samples' inputs A[s] with coefficients D[s, r + x]. */
#define TN_TILE(nr, nc, msk, lst)                                                     \
    FBP_SG(comb_tile)(nr, nc, m, D + r, ldd, 1, 0, A, NULL, 0, j, 1, alpha, beta,       \
                      W + r * ldw, ldw, msk, lst)
#define TN_CASE(nr, nc)                                                                \
    case (nr) * 8 + (nc):                                                              \
        if ((nr) > TN_R || (nc) > TN_C)                                                \
            break;                                                                     \
        if (cut)                                                                       \
            TN_TILE(nr, nc, 1, tail);                                                  \
        else                                                                           \
            TN_TILE(nr, nc, 0, tail);                                                  \
        break;
#define TN_ROWS(nr) TN_CASE(nr, 1) TN_CASE(nr, 2) TN_CASE(nr, 3) TN_CASE(nr, 4)

static TARGET void FBP_SG(tn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, REAL alpha,
                              const REAL *D, ptrdiff_t ldd, const REAL *const *A,
                              REAL beta, REAL *W, ptrdiff_t ldw,
                              const REAL *const *next, ptrdiff_t m_next)
{
    ptrdiff_t j, q, r, kv = (k + NL - 1) / NL;     /* vectors in a row, the last maybe cut */
    ptrdiff_t ntiles = (n + TN_R - 1) / TN_R, step = tile_step(ntiles) % ntiles, qs;
    ptrdiff_t blocks = (kv + TN_C - 1) / TN_C, b = 0;
    ptrdiff_t row_lines = (k * (ptrdiff_t)sizeof(REAL) + 63) / 64;
    for (j = 0; j < k; j += TN_C * NL, b++) {
        int nc = (int)((k - j + NL - 1) / NL < TN_C ? (k - j + NL - 1) / NL : TN_C);
        /* the lanes of the last vector in the row: all, or the row's end */
        const int cut = j + nc * NL > k;
        const MASK tail = V_FIRST_LANES(cut ? k - j - (nc - 1) * NL : NL);
        /* this block's share of the next inputs: about k / blocks values a row */
        prefetch_lines((const void *const *)next, m_next, row_lines * b / blocks,
                       row_lines * (b + 1) / blocks);
        /* qs = q * step mod ntiles, kept by adding (no division a tile) */
        for (q = 0, qs = 0; q < ntiles; q++, qs = qs + step < ntiles ? qs + step
                                                                     : qs + step - ntiles) {
            r = qs * TN_R;
            int nr = (int)(n - r < TN_R ? n - r : TN_R);
            switch (nr * 8 + nc) {
            TN_ROWS(1) TN_ROWS(2) TN_ROWS(3) TN_ROWS(4)
            }
        }
    }
}

#undef TN_ROWS
#undef TN_CASE
#undef TN_TILE

/* BP2 (O = D W): row x of the tile is row s + x of O, the combination of
 * the rows of W with coefficients D[s + x, i]. */
#define NN_TILE(ns, nc, msk, lst)                                                     \
    FBP_SG(comb_tile)(ns, nc, k, D + s * ldd, 1, ldd, 1, NULL, W, ldw, j, 0, 1, 0,      \
                      O + s * ldo, ldo, msk, lst)
#define NN_CASE(ns, nc)                                                                \
    case (ns) * 8 + (nc):                                                              \
        if ((ns) > NN_S || (nc) > NN_C)                                                \
            break;                                                                     \
        if (cut)                                                                       \
            NN_TILE(ns, nc, 1, tail);                                                  \
        else                                                                           \
            NN_TILE(ns, nc, 0, tail);                                                  \
        break;
#define NN_SAMPLES(ns) NN_CASE(ns, 1) NN_CASE(ns, 2) NN_CASE(ns, 3)

static TARGET void FBP_SG(nn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const REAL *D,
                              ptrdiff_t ldd, const REAL *W, ptrdiff_t ldw, REAL *O,
                              ptrdiff_t ldo)
{
    ptrdiff_t s, j;
    const ptrdiff_t s_tiles = (m + NN_S - 1) / NN_S;       /* samples cut as nt's */
    const ptrdiff_t s_base = m / s_tiles, s_extra = m % s_tiles;
    ptrdiff_t i;
    for (j = 0; j < n; j += NN_C * NL) {
        int nc = (int)((n - j + NL - 1) / NL < NN_C ? (n - j + NL - 1) / NL : NN_C);
        const int cut = j + nc * NL > n;
        const MASK tail = V_FIRST_LANES(cut ? n - j - (nc - 1) * NL : NL);
        for (i = 0; i < s_tiles; i++) {
            s = FBP_SG_TILE_START(i, s_base, s_extra);
            int ns = FBP_SG_TILE_SIZE(i, s_base, s_extra);
            switch (ns * 8 + nc) {
            NN_SAMPLES(1) NN_SAMPLES(2) NN_SAMPLES(3) NN_SAMPLES(4) NN_SAMPLES(5)
            }
        }
    }
}

#undef NN_SAMPLES
#undef NN_CASE
#undef NN_TILE
#undef FBP_SG
#undef FBP_SG_CAT
#undef FBP_SG_CAT_
#undef FBP_SG_TILE_START
#undef FBP_SG_TILE_SIZE

#undef REAL
#undef S
#undef V_FIRST_LANES
#undef VEC
#undef NL
#undef MASK
#undef V_MASKZ_LOADU
#undef V_MASK_STOREU
#undef V_LOADU
#undef V_STOREU
#undef V_SET1
#undef V_ZERO
#undef V_MUL
#undef V_FMADD
#undef V_HSUM
