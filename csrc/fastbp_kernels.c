/* The kernels of fastbp_kernels.h, instantiated for double and float. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "fastbp_kernels.h"

#define REAL double
#define S _d
#define EXP exp
#define LOG log
#define TANH tanh
#define FABS fabs
#define ISNAN isnan
#define REAL_MAX DBL_MAX
#include "fastbp_kernels_impl.h"
#undef REAL
#undef S
#undef EXP
#undef LOG
#undef TANH
#undef FABS
#undef ISNAN
#undef REAL_MAX

#define REAL float
#define S _f
#define EXP expf
#define LOG logf
#define TANH tanhf
#define FABS fabsf
#define ISNAN isnan
#define REAL_MAX FLT_MAX
#include "fastbp_kernels_impl.h"
