/*
 * fastbp_small_gemm.h -- the products of a narrow layer for a mini-batch of
 * a few samples, the first layer's read where the samples lie.
 *
 * With the m samples of a mini-batch as rows (the book's mini-batch is 10),
 * a layer's feedforward product, its BP4 step and BP2 through its weights
 * are
 *
 *   Z = A W^T                 Z[s, i] = sum_j A[s, j] W[i, j]   (feedforward)
 *   W <- beta W + alpha D^T A   W[i, j] = beta W[i, j]
 *                                        + alpha sum_s D[s, i] A[s, j]  (BP4)
 *   O = D W                   O[s, j] = sum_i D[s, i] W[i, j]   (BP2)
 *
 * For W1 ([784, 30, 10], m = 10) the first layer's are 10 x 784 by
 * 784 x 30 and 30 x 10 by 10 x 784: nearly all of an epoch's arithmetic,
 * in products too small for a general GEMM to gain by packing its
 * operands; the output layer's are smaller still, and a BLAS call's fixed
 * cost is most of theirs.  These kernels keep a tile of results in vector
 * registers and take A as a table of row pointers: for the first layer the
 * engine hands them the rows of the data set itself, so a mini-batch's
 * inputs are never copied.
 *
 * Each result is computed the same way wherever it falls in a tile (a fixed
 * order over j, s or i), so a product cut into blocks of rows of W, or of
 * columns of O (one per thread), gives the same bits as the whole product.
 *
 * W, Z, D and O are row-major with the given row strides.  The kernels are
 * compiled twice for x86-64 (GCC's target attribute): for processors with
 * AVX-512 and for those with AVX2 and FMA, each call naming its variant.
 * The two sum in vectors of different widths, so their results differ in
 * the last bits; each is the same whatever blocks it is cut into.  The
 * engine uses the best variant fbp_small_gemm_available() reports, and
 * calls BLAS where it reports none.
 */
#ifndef FASTBP_SMALL_GEMM_H
#define FASTBP_SMALL_GEMM_H

#include <stddef.h>

/* The variants, by instruction set. */
#define FBP_SMALL_AVX2 1
#define FBP_SMALL_AVX512 2

/* The best variant this processor runs (FBP_SMALL_AVX512 where it has
 * AVX-512, else FBP_SMALL_AVX2 where it has AVX2 and FMA), or 0 where it
 * runs none.  A processor that runs FBP_SMALL_AVX512 also runs
 * FBP_SMALL_AVX2.  Every kernel below takes the variant as its first
 * argument. */
int fbp_small_gemm_available(void);

/* Z (m x n, ldz) <- A W^T, with row s of A (k values) at A[s] and W n x k
 * (ldw); m, n, k >= 1.  _d for double, _f for float. */
void fbp_small_gemm_nt_d(int variant, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                         const double *const *A, const double *W, ptrdiff_t ldw,
                         double *Z, ptrdiff_t ldz);
void fbp_small_gemm_nt_f(int variant, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                         const float *const *A, const float *W, ptrdiff_t ldw,
                         float *Z, ptrdiff_t ldz);

/* W (n x k, ldw) <- beta W + alpha D^T A, with D m x n (ldd) and row s of
 * A (k values) at A[s]; m, n, k >= 1.  Meanwhile the m_next rows next[s]
 * (k values each; m_next may be 0) are fetched into the L2 cache: the
 * inputs of a later mini-batch. */
void fbp_small_gemm_tn_d(int variant, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, double alpha,
                         const double *D, ptrdiff_t ldd, const double *const *A,
                         double beta, double *W, ptrdiff_t ldw,
                         const double *const *next, ptrdiff_t m_next);
void fbp_small_gemm_tn_f(int variant, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                         const float *D, ptrdiff_t ldd, const float *const *A,
                         float beta, float *W, ptrdiff_t ldw,
                         const float *const *next, ptrdiff_t m_next);

/* O (m x n, ldo) <- D W, with D m x k (ldd) and W k x n (ldw); m, n,
 * k >= 1. */
void fbp_small_gemm_nn_d(int variant, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const double *D,
                         ptrdiff_t ldd, const double *W, ptrdiff_t ldw, double *O,
                         ptrdiff_t ldo);
void fbp_small_gemm_nn_f(int variant, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *D,
                         ptrdiff_t ldd, const float *W, ptrdiff_t ldw, float *O,
                         ptrdiff_t ldo);

#endif /* FASTBP_SMALL_GEMM_H */
