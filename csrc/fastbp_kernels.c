/* The kernels of fastbp_kernels.h, instantiated for double and float. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastbp_clones.h"
#include "fastbp_kernels.h"

/* No floating-point operation here is relied on to trap or to set a flag
 * that anything reads: NaN and overflow are found by looking at values.
 * Saying so lets GCC turn the sigmoid's clamps (fbp_exp) into selects and
 * vectorize it for AVX2 as well; with the default, only the AVX-512 clone
 * was vectorized (it has masked operations) and the AVX2 one ran one value
 * at a time.  Rounding is unaffected: no value changes. */
#pragma GCC optimize("no-trapping-math")

/* double: e^r by Taylor to r^13 (|r| <= ln2/2: error < 5e-18). */
#define REAL double
#define S _d
#define UINT uint64_t
#define LOG log
#define TANH tanh
#define FABS fabs
#define REAL_MAX DBL_MAX
#define EXP_LO (-745.0)
#define EXP_HI 709.782712893384
#define EXP_ROUND 6755399441055744.0          /* 1.5 * 2^52 */
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define EXP_BIAS 1023
#define EXP_SHIFT 52
#define EXP_POLY(r) (1.0 + (r) * (1.0 + (r) * (1.0 / 2 + (r) * (1.0 / 6 + (r) * (1.0 / 24 \
    + (r) * (1.0 / 120 + (r) * (1.0 / 720 + (r) * (1.0 / 5040 + (r) * (1.0 / 40320 \
    + (r) * (1.0 / 362880 + (r) * (1.0 / 3628800 + (r) * (1.0 / 39916800 \
    + (r) * (1.0 / 479001600 + (r) * (1.0 / 6227020800.0))))))))))))))
#include "fastbp_kernels_impl.h"
#undef REAL
#undef S
#undef UINT
#undef LOG
#undef TANH
#undef FABS
#undef REAL_MAX
#undef EXP_LO
#undef EXP_HI
#undef EXP_ROUND
#undef LN2_HI
#undef LN2_LO
#undef EXP_BIAS
#undef EXP_SHIFT
#undef EXP_POLY

/* float: e^r by Taylor to r^7 (error < 6e-9). */
#define REAL float
#define S _f
#define UINT uint32_t
#define LOG logf
#define TANH tanhf
#define FABS fabsf
#define REAL_MAX FLT_MAX
#define EXP_LO (-104.0f)
#define EXP_HI 88.72283905206835f
#define EXP_ROUND 12582912.0f                 /* 1.5 * 2^23 */
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.428606765330187e-06f
#define EXP_BIAS 127
#define EXP_SHIFT 23
#define EXP_POLY(r) (1.0f + (r) * (1.0f + (r) * (1.0f / 2 + (r) * (1.0f / 6 + (r) * (1.0f / 24 \
    + (r) * (1.0f / 120 + (r) * (1.0f / 720 + (r) * (1.0f / 5040))))))))
#include "fastbp_kernels_impl.h"

/* A sense-reversing barrier for the engine's threads.  A waiting thread
 * spins briefly (the others are usually a few microseconds behind), then
 * yields its core, so that a machine busier than it has cores does not
 * turn every barrier into a wait for the scheduler's next time slice. */
#include <sched.h>

void fbp_barrier_init(fbp_barrier *bar, int n_threads)
{
    atomic_store(&bar->count, 0);
    atomic_store(&bar->sense, 0);
    bar->n_threads = n_threads;
}

void fbp_prefetch_start(fbp_prefetch *pf, const void *const *rows,
                        const ptrdiff_t *order, ptrdiff_t count, size_t row_bytes)
{
    pf->rows = rows;
    pf->order = order;
    pf->count = count;
    pf->row_bytes = row_bytes;
    pf->row = 0;
    pf->offset = 0;
}

int fbp_prefetch_some(fbp_prefetch *pf, int lines)
{
    while (lines-- > 0) {
        if (pf->row >= pf->count)
            return 0;
        /* into L2: the mini-batch's rows together are larger than L1 */
        FBP_PREFETCH((const char *)pf->rows[pf->order[pf->row]] + pf->offset);
        pf->offset += 64;
        if (pf->offset >= pf->row_bytes) {
            pf->offset = 0;
            pf->row++;
        }
    }
    return pf->row < pf->count;
}

void fbp_barrier_wait_prefetching(fbp_barrier *bar, int *local_sense,
                                  fbp_prefetch *pf)
{
    int sense = !*local_sense;
    long spins = 0;
    *local_sense = sense;
    if (bar->n_threads <= 1)
        return;
    if (atomic_fetch_add_explicit(&bar->count, 1, memory_order_acq_rel)
            == bar->n_threads - 1) {
        atomic_store_explicit(&bar->count, 0, memory_order_relaxed);
        atomic_store_explicit(&bar->sense, sense, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&bar->sense, memory_order_acquire) != sense) {
        if (pf != NULL && fbp_prefetch_some(pf, 2))
            continue;
        if (++spins > 4000)
            sched_yield();
#if defined(__x86_64__) || defined(__i386__)
        else
            __builtin_ia32_pause();
#endif
    }
}

void fbp_barrier_wait(fbp_barrier *bar, int *local_sense)
{
    fbp_barrier_wait_prefetching(bar, local_sense, NULL);
}
