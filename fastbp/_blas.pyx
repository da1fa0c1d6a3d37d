# cython: language_level=3
"""Python twins of the row-major BLAS wrappers, for the tests only."""
from cython cimport floating

from ._blas cimport gemm_rowmajor, NoTrans, Trans


def _gemm(bint trans_a, bint trans_b, floating alpha,
          const floating[:, ::1] A, const floating[:, ::1] B,
          floating beta, floating[:, ::1] C):
    """C <- alpha op(A) op(B) + beta C in place (row-major), via BLAS gemm."""
    cdef int m = C.shape[0]
    cdef int n = C.shape[1]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    cdef int kb = B.shape[1] if trans_b else B.shape[0]
    cdef int ma = A.shape[1] if trans_a else A.shape[0]
    cdef int nb = B.shape[0] if trans_b else B.shape[1]
    if k != kb or ma != m or nb != n:
        raise ValueError("gemm: shapes do not agree")
    if m == 0 or n == 0:
        return
    with nogil:
        gemm_rowmajor(Trans if trans_a else NoTrans,
                      Trans if trans_b else NoTrans,
                      m, n, k, alpha, &A[0, 0], A.shape[1],
                      &B[0, 0], B.shape[1], beta, &C[0, 0], C.shape[1])
