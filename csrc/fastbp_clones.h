/*
 * fastbp_clones.h -- FBP_CLONES, put before a kernel's definition.
 *
 * On x86-64 Linux with GCC, the element-wise kernels are compiled for
 * AVX-512, AVX2 and baseline x86-64, and the loader picks the best one the
 * processor has (function multi-versioning).  Elsewhere, or with
 * FBP_NO_CLONES defined, they are compiled once for the build's target.
 */
#ifndef FASTBP_CLONES_H
#define FASTBP_CLONES_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) \
    && defined(__linux__) && __GNUC__ >= 11 && !defined(FBP_NO_CLONES)
#define FBP_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FBP_CLONES
#endif

#endif /* FASTBP_CLONES_H */
