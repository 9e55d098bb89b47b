/** @file
 * nabla/dist.h — data-parallel training on MPI: ranks, shards, one all-reduce of the gradients.
 *
 * Every rank holds the whole model and computes the gradient of its shard of each global
 * minibatch; the ranks then sum their gradients, each weighted by its share of the batch, so
 * that every rank holds the gradient of the whole batch and takes the same optimizer step. Draw
 * the noise through nb_rng_shard (nabla/rng.h) and N ranks at global batch B follow the
 * trajectory of one process at batch B, up to the order of the sums. A step, on every rank:
 *
 *     int64_t first, n;
 *     nb_dist_shard(d, B, &first, &n);                 // this rank's examples of the batch
 *     nb_rng rng = nb_rng_fork(&base, step);
 *     nb_rng_shard(&rng, first, B);                    // ... and their noise
 *     ... the loss of examples [first, first + n) (a mean over them), nb_backward ...
 *     nb_dist_allreduce_grads(d, ps, (double)n / B);   // the gradient of the whole batch
 *     nb_optim_step(opt);
 *
 * docs/distributed.md explains the rest (and docs/examples/dist_mlp.c is a whole program);
 * nb_trainer_new_dist (nabla/models.h) trains the model zoo this way.
 *
 * A NULL nb_dist is one rank: rank 0 of 1, every collective a local no-op. nabla built without
 * MPI (-Dmpi=disabled) provides every function: nb_dist_init_env gives that single rank (and
 * refuses to run as one of several processes of mpirun), nb_dist_init fails with NB_ERR_STATE.
 *
 * The collectives (every function that takes a non-const nb_dist) must be called by every rank
 * in the same order. Their failure is an MPI error, which aborts the job (MPI's default); the
 * NB_ERR_ARG checks come first and fail the same way on every rank given the same arguments.
 */
#ifndef NB_DIST_H
#define NB_DIST_H

#include "autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The ranks of a data-parallel job and nabla's communicator over them (opaque). */
typedef struct nb_dist nb_dist;

/** 1 when nabla was built with MPI. */
NB_API int nb_dist_has_mpi(void);

/** Ranks over a communicator of an initialised MPI: comm points to an MPI_Comm (so that this
 * header needs no <mpi.h>: `nb_dist_init(&d, &comm)`), NULL means MPI_COMM_WORLD. nabla works
 * on a duplicate of it, so its messages never meet the caller's. Free with nb_dist_free. */
NB_API nb_status nb_dist_init(nb_dist **d, const void *comm);
/** For programs started either alone or by mpirun: under mpirun (Open MPI's OMPI_COMM_WORLD_SIZE,
 * PMIx's PMIX_RANK or PMI's PMI_RANK in the environment) initialises MPI unless the caller did,
 * and takes MPI_COMM_WORLD; nb_dist_free then finalises what it initialised. Alone, *d = NULL:
 * one rank, MPI untouched. */
NB_API nb_status nb_dist_init_env(nb_dist **d);
/** Frees d (NULL is fine); finalises MPI if nb_dist_init_env initialised it. */
NB_API void nb_dist_free(nb_dist *d);

/** This rank, 0 .. size - 1 (0 for a NULL d). */
NB_API int nb_dist_rank(const nb_dist *d);
/** The number of ranks (1 for a NULL d). */
NB_API int nb_dist_size(const nb_dist *d);
/** The ranks on this node (MPI_Comm_split_type, MPI_COMM_TYPE_SHARED). */
NB_API int nb_dist_local_size(const nb_dist *d);
/** This rank among the ranks on its node. */
NB_API int nb_dist_local_rank(const nb_dist *d);
/** Threads a rank should use: the node's cores divided by its ranks, at most the cores this
 * process may run on (mpirun binds each rank to a core or socket unless told --bind-to none);
 * at least 1. */
NB_API int nb_dist_threads(const nb_dist *d);

/** This rank's share of a batch of `batch` examples: [*first, *first + *n), contiguous, the
 * shares differing by at most one example; *n is 0 when there are fewer examples than ranks. */
NB_API nb_status nb_dist_shard(const nb_dist *d, int64_t batch, int64_t *first, int64_t *n);

/** Sums the gradients of ps (its flat gradient block, nb_params_flat) over the ranks, each rank's
 * multiplied by its weight first: every rank ends with Σ_r weight_r · grad_r. The weight n_r / B
 * of a rank holding n_r examples of a batch of B averages exactly, even over unequal shards;
 * 1 / size is the plain mean. One MPI_Allreduce; weight 1 leaves a single rank's block untouched.
 * Every rank's store must have the same parameters in the same order. */
NB_API nb_status nb_dist_allreduce_grads(nb_dist *d, nb_params *ps, double weight);
/** Copies rank root's parameter values (the flat data block) to every rank. */
NB_API nb_status nb_dist_broadcast_params(nb_dist *d, nb_params *ps, int root);
/** Sums v[0..n) over the ranks, in place (metrics, counts). */
NB_API nb_status nb_dist_sum(nb_dist *d, double *v, int64_t n);

/** Agrees on an outcome: every rank passes its own status (and, when it is an error, has its
 * message in nb_last_error). Returns NB_OK on every rank when every rank passed NB_OK; else, on
 * every rank, the lowest failing rank's status, with its message as "rank 1: <message>" in
 * nb_last_error (one rank keeps its status and message as they are). Call it wherever one rank
 * may fail alone, so that no rank waits for ever in the next collective while another has
 * stopped. */
NB_API nb_status nb_dist_agree(nb_dist *d, nb_status st);
/** NB_OK when data[0..bytes) holds the same bytes on every rank (compared by a 64-bit hash);
 * else NB_ERR_STATE on every rank, naming `what` and the first rank that differs from rank 0. */
NB_API nb_status nb_dist_same(nb_dist *d, const void *data, size_t bytes, const char *what);

/** Time spent in nb_dist_allreduce_grads, and its calls, since nb_dist_init (for benchmarks). */
NB_API double nb_dist_allreduce_seconds(const nb_dist *d, int64_t *calls);

#ifdef __cplusplus
}
#endif
#endif
