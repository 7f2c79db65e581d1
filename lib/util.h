/* util.h - byte order helpers and build switches shared inside lib/
 * (not public API). */
#ifndef KZ_UTIL_H
#define KZ_UTIL_H

/* A function whose loops are the engine's hot ones.  A build for one
 * CPU (-march=native, the default) compiles everything for it, and
 * KZ_HOT is nothing.  A build for any x86-64 (ARCH_FLAGS empty, as
 * Debian's; the Makefile then defines KZ_MULTIARCH) compiles each such
 * function three times, for x86-64-v4 (AVX-512), v3 (AVX2, FMA) and
 * the baseline, and the loader picks the CPU's own once (GCC's
 * function multiversioning, through an ifunc).  The static helpers a
 * KZ_HOT function calls are inlined into each of its versions. */
#if defined(KZ_MULTIARCH) && defined(__x86_64__) && defined(__GNUC__) && \
    !defined(__clang__)
#define KZ_HOT __attribute__((target_clones("arch=x86-64-v4", \
    "arch=x86-64-v3", "default")))
#else
#define KZ_HOT
#endif

/* Before a loop that writes several planes of one array, at distances
 * known only at run time, which never overlap: the compiler cannot
 * prove it, and past a few planes gives up vectorising rather than
 * check them all at run time. */
#if defined(__clang__)
#define KZ_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define KZ_IVDEP _Pragma("GCC ivdep")
#else
#define KZ_IVDEP
#endif

/* Checksums (model CRC, zip member CRC-32, tar header sums, PNG chunk
 * CRCs) are verified, except in the fuzz build: a random mutation
 * almost never keeps one valid, and the fuzzers must get past them to
 * the code that trusts what they cover (as zlib, libpng and OSS-Fuzz
 * do).  Anyone can recompute a checksum, so nothing may rely on one. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define KZ_CHECK_SUMS 0
#else
#define KZ_CHECK_SUMS 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Splits the next CSV field off *p (up to end or the line's end) into
 * out (max bytes and a NUL), handling double quotes, and moves *p
 * past it (to the comma or line end that follows).  Returns the
 * field's length, or -1 when it is longer than max or its quotes are
 * not closed. */
int kz_csv_field(const char **p, const char *end, char *out, size_t max);
/* Moves *p past a UTF-8 byte order mark, if the text starts with one. */
void kz_csv_skip_bom(const char **p, const char *end);
/* Moves *p past the line end at *p and returns 1 when the line there is
 * blank; 0, *p unmoved, otherwise. */
int kz_csv_skip_blank(const char **p, const char *end);

/* malloc for buffers of megabytes that are filled at once (inflated
 * data, whole files): aligned to and advised for huge pages, so that
 * filling one takes a page fault per 2 MiB, not per 4 KiB.  Freed with
 * free(); NULL when out of memory. */
void *kz_alloc_big(size_t n);

/* Whether the environment variable name is set and not empty: how the
 * KZ_NO_ variables turn a CPU feature off, to test the fallback. */
int kz_env_set(const char *name);

static inline uint16_t get_le16(const uint8_t *b)
{ return (uint16_t)(b[0] | b[1] << 8); }
static inline uint32_t get_le32(const uint8_t *b)
{ return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
    (uint32_t)b[3] << 24; }
static inline uint64_t get_le64(const uint8_t *b)
{ return (uint64_t)get_le32(b) | (uint64_t)get_le32(b + 4) << 32; }
static inline uint32_t get_be32(const uint8_t *b)
{ return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
    (uint32_t)b[2] << 8 | (uint32_t)b[3]; }
static inline float get_lef32(const uint8_t *b)
{ uint32_t u = get_le32(b); float f; memcpy(&f, &u, 4); return f; }

static inline void put_le16(uint8_t *b, uint16_t v)
{ b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); }
static inline void put_le32(uint8_t *b, uint32_t v)
{ b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); b[2] = (uint8_t)(v >> 16);
  b[3] = (uint8_t)(v >> 24); }
static inline void put_be32(uint8_t *b, uint32_t v)
{ b[0] = (uint8_t)(v >> 24); b[1] = (uint8_t)(v >> 16); b[2] = (uint8_t)(v >> 8);
  b[3] = (uint8_t)v; }
static inline void put_le64(uint8_t *b, uint64_t v)
{ put_le32(b, (uint32_t)v); put_le32(b + 4, (uint32_t)(v >> 32)); }
static inline void put_lef32(uint8_t *b, float f)
{ uint32_t u; memcpy(&u, &f, 4); put_le32(b, u); }

#endif
