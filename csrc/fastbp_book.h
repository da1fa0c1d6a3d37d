/*
 * fastbp_book.h -- the element-wise work of network.py's SGD, rounded
 * exactly as network.py rounds it (float64 only).
 *
 * The book's network.py trains one sample at a time with NumPy:
 *
 *     z = np.dot(w, a) + b;  a = 1.0/(1.0+np.exp(-z))            feedforward
 *     delta = (a - y) * (a*(1-a))                                  BP1
 *     delta = np.dot(w.T, delta) * (a*(1-a))                       BP2
 *     nabla_b = nabla_b + delta;  nabla_w = nabla_w + delta a^T    BP3, BP4
 *     w = w - (eta/m)*nabla_w;    b = b - (eta/m)*nabla_b          the step
 *
 * and network2.py the same, with delta = a - y for the cross-entropy cost
 * and w = (1-eta*(lmbda/n))*w - (eta/m)*nabla_w for L2 regularization.
 *
 * Every float64 operation rounds, and training amplifies a difference in
 * the last bit (two epochs of a [784, 30, 10] network turn 1e-16 into
 * 1e-8), so fastbp.network does the same operations in the same order:
 * the products are the same BLAS gemv calls (made by fastbp/_engine.pyx),
 * or the same sums in the same order for a whole mini-batch at once
 * (fbp_book_gemv below, where the engine checked that they agree),
 * e^x is NumPy's own float64 exp loop (passed in as a function pointer),
 * and the kernels here are the rest, each sum in sample order and with no
 * fused multiply-add (a*b + c would round once, NumPy rounds twice).
 */
#ifndef FASTBP_BOOK_H
#define FASTBP_BOOK_H

#include <stddef.h>

/* A NumPy unary ufunc inner loop (PyUFuncGenericFunction, npy_intp being
 * ptrdiff_t): out[i] = f(in[i]) for dims[0] values, args = {in, out}. */
typedef void (*fbp_unary_loop)(char **args, const ptrdiff_t *dims,
                               const ptrdiff_t *steps, void *data);

/* Feedforward after the product: z <- z + b, then a = 1.0/(1.0 + e^{-z})
 * written over z.  neg and e are scratch of n values each. */
void fbp_book_sigmoid(double *z, const double *b, ptrdiff_t n,
                      double *neg, double *e, fbp_unary_loop exp_loop,
                      void *exp_data);

/* BP1: delta = (a - y) * (a*(1 - a)) for the quadratic cost (FBP_QUADRATIC),
 * delta = a - y for the cross-entropy (FBP_CROSS_ENTROPY). */
void fbp_book_output_error(int cost, double *delta, const double *a,
                           const double *y, ptrdiff_t n);

/* BP2's factor: delta <- delta * (a*(1 - a)), delta holding np.dot(w.T, delta). */
void fbp_book_times_derivative(double *delta, const double *a, ptrdiff_t n);

/* BP4 and the step for one layer's weights, over a mini-batch of m samples:
 * W_new[i, j] = decay * W[i, j] - c * s_ij, s_ij = (((0 + D[0, i] A[0][j]) +
 * D[1, i] A[1][j]) + ...) in sample order.  D is m x n_out (rows ldd
 * apart), sample s's n_in inputs are at A[s] (read where they lie), W and
 * W_new are n_out x n_in (rows n_in apart).
 * Returns 1 when every new weight is within [-limit, limit] (not NaN),
 * else 0.  variant: FBP_BOOK_AVX512 or FBP_BOOK_AVX2, the sums in that
 * instruction set's registers (only where fbp_book_step_variant() is that
 * or better), or FBP_BOOK_PORTABLE, the compiler's vectorization of plain
 * C; the same bits from all three. */
#define FBP_BOOK_PORTABLE 0
#define FBP_BOOK_AVX2 1
#define FBP_BOOK_AVX512 2
int fbp_book_step_variant(void);
int fbp_book_weight_step(double *W_new, const double *W, const double *D,
                         ptrdiff_t ldd, const double *const *A, ptrdiff_t m,
                         ptrdiff_t n_out, ptrdiff_t n_in, double decay,
                         double c, double limit, int variant);

/* BP3 and the step for n biases: b_new[i] = b[i] - c * s_i,
 * s_i = ((0 + D[0, i]) + D[1, i]) + ..., D's rows ldd apart.  Returns 1
 * when every new bias is within [-limit, limit], else 0. */
int fbp_book_bias_step(double *b_new, const double *b, const double *D,
                       ptrdiff_t ldd, ptrdiff_t m, ptrdiff_t n, double c,
                       double limit);

/* The products z_s = np.dot(w, a_s) of m samples at once (fastbp_book_gemv.c):
 * Z[s * ldz + i] for the n_rows rows of W (rows n_in apart) and the inputs
 * a_s at A[s], with the bits of one single-threaded dgemv call per
 * sample where OpenBLAS's x86-64 dgemv kernels are the ones in use (checked
 * by the engine when it loads).  Only where fbp_book_gemv_usable(n_in): n_in
 * a multiple of 4 below 2048, and a processor with AVX2 and FMA.  wide: use
 * AVX-512's registers (only where fbp_book_gemv_wide()); the same bits. */
int fbp_book_gemv_usable(ptrdiff_t n_in);
int fbp_book_gemv_wide(void);
void fbp_book_gemv(double *Z, ptrdiff_t ldz, const double *W, ptrdiff_t n_rows,
                   ptrdiff_t n_in, const double *const *A, ptrdiff_t m, int wide);

#endif /* FASTBP_BOOK_H */
