# Row-major level-3 BLAS for fastbp, over scipy.linalg.cython_blas.
#
# BLAS is column-major; a row-major matrix is the transpose of the same
# memory read column-major.  So the row-major product C = op(A) op(B) is the
# column-major call gemm(op(B), op(A)) with the operands and sizes swapped.
# That swap is done once, here, and nowhere else.
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm


cdef enum BLAS_Trans:
    NoTrans = 110  # ord('n')
    Trans = 116    # ord('t')


cdef inline void gemm_rowmajor(BLAS_Trans ta, BLAS_Trans tb,
                               int m, int n, int k,
                               floating alpha, const floating *A, int lda,
                               const floating *B, int ldb,
                               floating beta, floating *C, int ldc) noexcept nogil:
    """C (m x n) <- alpha op(A) op(B) + beta C, all row-major.

    op(A) is m x k and op(B) is k x n; lda, ldb, ldc are row strides."""
    cdef char ta_ = ta
    cdef char tb_ = tb
    if floating is float:
        sgemm(&tb_, &ta_, &n, &m, &k, &alpha, <float *> B, &ldb,
              <float *> A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb_, &ta_, &n, &m, &k, &alpha, <double *> B, &ldb,
              <double *> A, &lda, &beta, C, &ldc)

