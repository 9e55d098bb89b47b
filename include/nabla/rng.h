/** @file
 * nabla/rng.h — a counter-based random generator (Philox4x32-10).
 *
 * The state is a key (the seed) and a counter. Filling a tensor of n values consumes a fixed
 * range of counters, and value i depends only on (key, counter + i / values-per-block), so the
 * stream is the same whatever the number of threads and however the work is split. nb_rng is a
 * value type: copy it to replay a stream, store it in a checkpoint to resume one.
 *
 * Nothing here allocates or fails; a generator is used by one thread at a time.
 */
#ifndef NB_RNG_H
#define NB_RNG_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A generator's whole state, a value type (see the top of this file). */
typedef struct nb_rng {
    uint64_t key;     /**< the seed */
    uint64_t counter; /**< next unused 128-bit block */
    int64_t row0;     /**< the first row of a shard of a batch's draws (nb_rng_shard) */
    int64_t rows;     /**< the batch's rows; 0: no shard */
} nb_rng;

/** A generator at the start of the stream of seed. */
NB_API nb_rng nb_rng_seed(uint64_t seed);
/** An independent stream derived from r and a stream id (e.g.\ one per data loader, per epoch).
 * r is not advanced; the fork has no shard, whatever r has. */
NB_API nb_rng nb_rng_fork(const nb_rng *r, uint64_t stream);

/** Makes r draw one shard of a batch: rows [first, first + n) of a batch of total rows, where a
 * row is dim 0 of the filled tensor (an example) and n is that dim. Each fill (nb_rng_uniform,
 * nb_rng_normal, nb_rng_bernoulli) then gives exactly the values those rows get from the fill
 * of the whole (total, ...) tensor, skipping ahead to them, and advances r as that whole fill
 * does; so several processes, each with its own rows, draw between them what one process draws
 * for the whole batch (nabla/dist.h). Scalar draws (nb_rng_u32, ...) are unaffected. A shard
 * that reaches past total rows draws as if the batch were first + n rows long.
 * @return NB_OK; NB_ERR_ARG when first < 0 or total < 1 (total = 0 with first = 0 removes the
 *         shard). */
NB_API nb_status nb_rng_shard(nb_rng *r, int64_t first, int64_t total);

/** 32 uniform random bits; consumes one block. */
NB_API uint32_t nb_rng_u32(nb_rng *r);
/** A uniform double in [0, 1), 53 bits; consumes one block. */
NB_API double nb_rng_uniform1(nb_rng *r);
/** Uniform integer in [0, n), without modulo bias; 0 when n <= 1. */
NB_API uint64_t nb_rng_below(nb_rng *r, uint64_t n);

/** Fill a contiguous tensor (not checked) with values uniform in [lo, hi). f32 draws 24-bit
 * uniforms, f64 53-bit. The counter advances by the blocks used. */
NB_API void nb_rng_uniform(nb_rng *r, nb_tensor *t, double lo, double hi);
/** Fills a contiguous tensor with N(mean, std²) values (Box–Muller on the same uniforms, in
 * double: SLEEF's vector log and sincos, within 2 ulp of libm's; f32 values are rounded from it). */
NB_API void nb_rng_normal(nb_rng *r, nb_tensor *t, double mean, double std);
/** Fills a contiguous tensor with 1 with probability p, else 0. */
NB_API void nb_rng_bernoulli(nb_rng *r, nb_tensor *t, double p);

/** The raw block function, for tests against the published known-answer vectors. */
NB_API void nb_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

#ifdef __cplusplus
}
#endif
#endif
