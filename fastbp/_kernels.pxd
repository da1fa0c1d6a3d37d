# The C kernels of csrc/fastbp_kernels.h, and fused float/double dispatchers
# so that the engine is written once for cython.floating.
from cython cimport floating


cdef extern from "fastbp_kernels.h" nogil:
    enum fbp_activation:
        FBP_SIGMOID
        FBP_LINEAR
        FBP_TANH
        FBP_RELU
    enum fbp_cost:
        FBP_QUADRATIC
        FBP_CROSS_ENTROPY

    double fbp_activate_d(int act, double *A, Py_ssize_t lda, const double *b, Py_ssize_t m, Py_ssize_t n)
    float fbp_activate_f(int act, float *A, Py_ssize_t lda, const float *b, Py_ssize_t m, Py_ssize_t n)
    double fbp_times_derivative_d(int act, double *D, Py_ssize_t ldd, const double *A, Py_ssize_t lda,
                                  Py_ssize_t m, Py_ssize_t n)
    float fbp_times_derivative_f(int act, float *D, Py_ssize_t ldd, const float *A, Py_ssize_t lda,
                                 Py_ssize_t m, Py_ssize_t n)
    double fbp_output_error_d(int cost, int act, double *D, Py_ssize_t ldd, const double *A,
                              Py_ssize_t lda, const double *Y, Py_ssize_t ldy,
                              Py_ssize_t m, Py_ssize_t n)
    float fbp_output_error_f(int cost, int act, float *D, Py_ssize_t ldd, const float *A,
                             Py_ssize_t lda, const float *Y, Py_ssize_t ldy,
                             Py_ssize_t m, Py_ssize_t n)
    void fbp_bias_update_d(double *b, const double *D, Py_ssize_t ldd, Py_ssize_t m,
                           Py_ssize_t n, double alpha, double beta)
    void fbp_bias_update_f(float *b, const float *D, Py_ssize_t ldd, Py_ssize_t m,
                           Py_ssize_t n, float alpha, float beta)
    void fbp_gather_rows_d(double *out, const void * const *rows, const Py_ssize_t *order,
                           int single, Py_ssize_t m, Py_ssize_t n)
    void fbp_gather_rows_f(float *out, const void * const *rows, const Py_ssize_t *order,
                           int single, Py_ssize_t m, Py_ssize_t n)
    double fbp_max_abs_d(const double *x, Py_ssize_t n)
    float fbp_max_abs_f(const float *x, Py_ssize_t n)
    double fbp_rows_max_abs_d(const double **rows, Py_ssize_t n, Py_ssize_t width)
    float fbp_rows_max_abs_f(const float **rows, Py_ssize_t n, Py_ssize_t width)
    double fbp_cost_sum_d(int cost, const double *A, const double *Y, Py_ssize_t m, Py_ssize_t n)
    double fbp_cost_sum_f(int cost, const float *A, const float *Y, Py_ssize_t m, Py_ssize_t n)
    void fbp_argmax_rows_d(Py_ssize_t *out, const double *A, Py_ssize_t m, Py_ssize_t n)
    void fbp_argmax_rows_f(Py_ssize_t *out, const float *A, Py_ssize_t m, Py_ssize_t n)
    ctypedef struct fbp_barrier:
        pass
    void fbp_barrier_init(fbp_barrier *bar, int n_threads)
    void fbp_barrier_wait(fbp_barrier *bar, int *local_sense)
    ctypedef struct fbp_prefetch:
        pass
    void fbp_prefetch_start(fbp_prefetch *pf, const void *const *rows,
                            const Py_ssize_t *order, Py_ssize_t count, size_t row_bytes)
    void fbp_barrier_wait_prefetching(fbp_barrier *bar, int *local_sense,
                                      fbp_prefetch *pf)


cdef inline floating activate(int act, floating *A, Py_ssize_t lda, const floating *b,
                              Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fbp_activate_f(act, A, lda, b, m, n)
    else:
        return fbp_activate_d(act, A, lda, b, m, n)


cdef inline floating times_derivative(int act, floating *D, Py_ssize_t ldd,
                                      const floating *A, Py_ssize_t lda,
                                      Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fbp_times_derivative_f(act, D, ldd, A, lda, m, n)
    else:
        return fbp_times_derivative_d(act, D, ldd, A, lda, m, n)


cdef inline floating output_error(int cost, int act, floating *D, Py_ssize_t ldd,
                                  const floating *A, Py_ssize_t lda,
                                  const floating *Y, Py_ssize_t ldy,
                                  Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fbp_output_error_f(cost, act, D, ldd, A, lda, Y, ldy, m, n)
    else:
        return fbp_output_error_d(cost, act, D, ldd, A, lda, Y, ldy, m, n)


cdef inline void bias_update(floating *b, const floating *D, Py_ssize_t ldd,
                             Py_ssize_t m, Py_ssize_t n,
                             floating alpha, floating beta) noexcept nogil:
    if floating is float:
        fbp_bias_update_f(b, D, ldd, m, n, alpha, beta)
    else:
        fbp_bias_update_d(b, D, ldd, m, n, alpha, beta)


cdef inline void gather_rows(floating *out, const void * const *rows,
                             const Py_ssize_t *order, int single,
                             Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    if floating is float:
        fbp_gather_rows_f(out, rows, order, single, m, n)
    else:
        fbp_gather_rows_d(out, rows, order, single, m, n)


cdef inline floating max_abs(const floating *x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fbp_max_abs_f(x, n)
    else:
        return fbp_max_abs_d(x, n)


cdef inline double cost_sum(int cost, const floating *A, const floating *Y,
                            Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return fbp_cost_sum_f(cost, A, Y, m, n)
    else:
        return fbp_cost_sum_d(cost, A, Y, m, n)


cdef inline void argmax_rows(Py_ssize_t *out, const floating *A, Py_ssize_t m,
                             Py_ssize_t n) noexcept nogil:
    if floating is float:
        fbp_argmax_rows_f(out, A, m, n)
    else:
        fbp_argmax_rows_d(out, A, m, n)


# network.py's arithmetic for fastbp.network (csrc/fastbp_book.h), float64 only.
cdef extern from "fastbp_book.h" nogil:
    ctypedef void (*fbp_unary_loop)(char **args, const Py_ssize_t *dims,
                                    const Py_ssize_t *steps, void *data) noexcept nogil
    void fbp_book_sigmoid(double *z, const double *b, Py_ssize_t n, double *neg, double *e,
                          fbp_unary_loop exp_loop, void *exp_data)
    void fbp_book_output_error(int cost, double *delta, const double *a, const double *y,
                               Py_ssize_t n)
    void fbp_book_times_derivative(double *delta, const double *a, Py_ssize_t n)
    int fbp_book_weight_step(double *W_new, const double *W, const double *D, Py_ssize_t ldd,
                             const double **A, Py_ssize_t m, Py_ssize_t n_out,
                             Py_ssize_t n_in, double decay, double c, double limit,
                             int variant)
    int FBP_BOOK_PORTABLE, FBP_BOOK_AVX2, FBP_BOOK_AVX512
    int fbp_book_step_variant()
    int fbp_book_bias_step(double *b_new, const double *b, const double *D, Py_ssize_t ldd,
                           Py_ssize_t m, Py_ssize_t n, double c, double limit)
    int fbp_book_gemv_usable(Py_ssize_t n_in)
    int fbp_book_gemv_wide()
    void fbp_book_gemv(double *Z, Py_ssize_t ldz, const double *W, Py_ssize_t n_rows,
                       Py_ssize_t n_in, const double **A, Py_ssize_t m, int wide)


# A narrow layer's products for a mini-batch of a few samples, its inputs
# read through a table of row pointers (csrc/fastbp_small_gemm.h), on
# processors with AVX-512 or AVX2; variant: the instruction set's.
cdef extern from "fastbp_small_gemm.h" nogil:
    int FBP_SMALL_AVX2, FBP_SMALL_AVX512
    int fbp_small_gemm_available()
    void fbp_small_gemm_nt_d(int variant, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             const double *const *A, const double *W, Py_ssize_t ldw,
                             double *Z, Py_ssize_t ldz)
    void fbp_small_gemm_nt_f(int variant, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             const float *const *A, const float *W, Py_ssize_t ldw,
                             float *Z, Py_ssize_t ldz)
    void fbp_small_gemm_tn_d(int variant, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             double alpha, const double *D, Py_ssize_t ldd,
                             const double *const *A, double beta, double *W, Py_ssize_t ldw,
                             const double *const *next, Py_ssize_t m_next)
    void fbp_small_gemm_tn_f(int variant, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             float alpha, const float *D, Py_ssize_t ldd,
                             const float *const *A, float beta, float *W, Py_ssize_t ldw,
                             const float *const *next, Py_ssize_t m_next)
    void fbp_small_gemm_nn_d(int variant, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             const double *D, Py_ssize_t ldd, const double *W,
                             Py_ssize_t ldw, double *O, Py_ssize_t ldo)
    void fbp_small_gemm_nn_f(int variant, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             const float *D, Py_ssize_t ldd, const float *W,
                             Py_ssize_t ldw, float *O, Py_ssize_t ldo)


# Z = A W^T, W <- beta W + alpha D^T A (A's m rows at A[0], A[1], ...) and
# O = D W
cdef inline void small_gemm_nt(int variant, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                               const void *const *A, const floating *W, Py_ssize_t ldw,
                               floating *Z, Py_ssize_t ldz) noexcept nogil:
    if floating is float:
        fbp_small_gemm_nt_f(variant, m, n, k, <const float *const *> A, W, ldw, Z, ldz)
    else:
        fbp_small_gemm_nt_d(variant, m, n, k, <const double *const *> A, W, ldw, Z, ldz)


cdef inline void small_gemm_tn(int variant, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                               floating alpha, const floating *D, Py_ssize_t ldd,
                               const void *const *A, floating beta, floating *W, Py_ssize_t ldw,
                               const void *const *next, Py_ssize_t m_next) noexcept nogil:
    if floating is float:
        fbp_small_gemm_tn_f(variant, m, n, k, alpha, D, ldd, <const float *const *> A, beta,
                            W, ldw, <const float *const *> next, m_next)
    else:
        fbp_small_gemm_tn_d(variant, m, n, k, alpha, D, ldd, <const double *const *> A, beta,
                            W, ldw, <const double *const *> next, m_next)


cdef inline void small_gemm_nn(int variant, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                               const floating *D, Py_ssize_t ldd, const floating *W,
                               Py_ssize_t ldw, floating *O, Py_ssize_t ldo) noexcept nogil:
    if floating is float:
        fbp_small_gemm_nn_f(variant, m, n, k, D, ldd, W, ldw, O, ldo)
    else:
        fbp_small_gemm_nn_d(variant, m, n, k, D, ldd, W, ldw, O, ldo)
