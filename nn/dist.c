/* nn/dist.c — data-parallel training on MPI (nabla/dist.h). Built without MPI (NB_HAVE_MPI 0),
 * the same functions serve the single rank a NULL nb_dist stands for.
 *
 * Every collective is one MPI call on nabla's own duplicate of the communicator (two when it
 * fails: nb_dist_agree then broadcasts the failing rank's message). Blocks of more than 2^30
 * values go in 2^30-value pieces, MPI counts being ints.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#if NB_HAVE_MPI
#include <mpi.h>
#endif

#include "nabla/dist.h"
#include "tensor/error.h"

enum { CHUNK = 1 << 30, MSG = 512 };

struct nb_dist {
#if NB_HAVE_MPI
    MPI_Comm comm;
#endif
    int rank, size, local_rank, local_size;
    int finalize;      /* nb_dist_init_env initialised MPI: nb_dist_free finalises it */
    double reduce_s;   /* in nb_dist_allreduce_grads */
    int64_t reduce_calls;
};

int nb_dist_rank(const nb_dist *d) { return d ? d->rank : 0; }
int nb_dist_size(const nb_dist *d) { return d ? d->size : 1; }
int nb_dist_local_rank(const nb_dist *d) { return d ? d->local_rank : 0; }
int nb_dist_local_size(const nb_dist *d) { return d ? d->local_size : 1; }

double nb_dist_allreduce_seconds(const nb_dist *d, int64_t *calls)
{
    if (calls) *calls = d ? d->reduce_calls : 0;
    return d ? d->reduce_s : 0;
}

int nb_dist_threads(const nb_dist *d)
{
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int per = (int)((cores > 0 ? cores : 1) / nb_dist_local_size(d));
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < per) per = CPU_COUNT(&set);
    return per > 0 ? per : 1;
}

nb_status nb_dist_shard(const nb_dist *d, int64_t batch, int64_t *first, int64_t *n)
{
    if (!first || !n) return nb_error(NB_ERR_ARG, "nb_dist_shard: first or n is NULL");
    if (batch < 0) return nb_error(NB_ERR_ARG, "nb_dist_shard: a batch of %lld examples", (long long)batch);
    const int64_t r = nb_dist_rank(d), p = nb_dist_size(d), q = batch / p, extra = batch % p;
    *first = r * q + (r < extra ? r : extra);
    *n = q + (r < extra);
    return NB_OK;
}

/* grad[0..n) *= w */
static void scale(void *grad, int64_t n, nb_dtype dt, double w)
{
    if (w == 1) return;
    if (dt == NB_F64)
        for (int64_t i = 0; i < n; i++) ((double *)grad)[i] *= w;
    else
        for (int64_t i = 0; i < n; i++) ((float *)grad)[i] = (float)((double)((float *)grad)[i] * w);
}

/* ---- without MPI: one rank ----------------------------------------------------------------- */
#if !NB_HAVE_MPI

int nb_dist_has_mpi(void) { return 0; }

nb_status nb_dist_init(nb_dist **d, const void *comm)
{
    (void)comm;
    if (d) *d = NULL;
    return nb_error(NB_ERR_STATE, "nb_dist_init: nabla was built without MPI (-Dmpi=disabled, or no "
                    "libopenmpi-dev when it was configured); nb_dist_init_env runs as a single rank");
}

/* The processes mpirun started, from its environment: 0 when not started by one, -1 when the
 * launcher does not say how many. */
static long launched(void)
{
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (!size) size = getenv("PMI_SIZE");
    if (size) return strtol(size, NULL, 10);
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? -1 : 0;
}

nb_status nb_dist_init_env(nb_dist **d)
{
    if (!d) return nb_error(NB_ERR_ARG, "nb_dist_init_env: d is NULL");
    *d = NULL;
    const long n = launched();
    if (n > 1 || n < 0) {
        char many[32] = "several";
        if (n > 1) snprintf(many, sizeof many, "%ld", n);
        return nb_error(NB_ERR_STATE, "nabla was built without MPI, but runs as one of %s processes started "
                        "by mpirun: each would train alone and write the same files; rebuild nabla with "
                        "-Dmpi=enabled (Debian: libopenmpi-dev)", many);
    }
    return NB_OK;
}

void nb_dist_free(nb_dist *d) { (void)d; }

nb_status nb_dist_allreduce_grads(nb_dist *d, nb_params *ps, double weight)
{
    (void)d;
    if (!ps || !isfinite(weight)) return nb_error(NB_ERR_ARG, "nb_dist_allreduce_grads: no store, or weight %g", weight);
    void *g;
    int64_t n;
    nb_params_flat(ps, NULL, &g, &n);
    scale(g, n, nb_params_dtype(ps), weight);
    return NB_OK;
}

nb_status nb_dist_broadcast_params(nb_dist *d, nb_params *ps, int root)
{
    (void)d;
    if (!ps || root != 0) return nb_error(NB_ERR_ARG, "nb_dist_broadcast_params: no store, or root %d of 1 rank", root);
    return NB_OK;
}

nb_status nb_dist_sum(nb_dist *d, double *v, int64_t n)
{
    (void)d;
    if ((!v && n) || n < 0) return nb_error(NB_ERR_ARG, "nb_dist_sum: %lld values at %p", (long long)n, (void *)v);
    return NB_OK;
}

nb_status nb_dist_agree(nb_dist *d, nb_status st)
{
    (void)d;
    return st;
}

nb_status nb_dist_same(nb_dist *d, const void *data, size_t bytes, const char *what)
{
    (void)d;
    if (!data && bytes) return nb_error(NB_ERR_ARG, "nb_dist_same: %s: %zu bytes at NULL", what ? what : "data", bytes);
    return NB_OK;
}

/* ---- with MPI ------------------------------------------------------------------------------ */
#else

int nb_dist_has_mpi(void) { return 1; }

nb_status nb_dist_init(nb_dist **d, const void *comm)
{
    if (!d) return nb_error(NB_ERR_ARG, "nb_dist_init: d is NULL");
    *d = NULL;
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (!up || down)
        return nb_error(NB_ERR_STATE, "nb_dist_init: MPI is %s (call MPI_Init first, or use nb_dist_init_env)",
                        down ? "finalised" : "not initialised");
    nb_dist *x = calloc(1, sizeof *x);
    if (!x) return nb_error(NB_ERR_NOMEM, "nb_dist_init: out of memory");
    MPI_Comm_dup(comm ? *(const MPI_Comm *)comm : MPI_COMM_WORLD, &x->comm);
    MPI_Comm_rank(x->comm, &x->rank);
    MPI_Comm_size(x->comm, &x->size);
    MPI_Comm node;
    MPI_Comm_split_type(x->comm, MPI_COMM_TYPE_SHARED, x->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &x->local_rank);
    MPI_Comm_size(node, &x->local_size);
    MPI_Comm_free(&node);
    *d = x;
    return NB_OK;
}

nb_status nb_dist_init_env(nb_dist **d)
{
    if (!d) return nb_error(NB_ERR_ARG, "nb_dist_init_env: d is NULL");
    *d = NULL;
    int up = 0;
    MPI_Initialized(&up);
    const int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
    if (!launched && !up) return NB_OK; /* alone: one rank, MPI untouched */
    if (!up) {
        int provided; /* only the calling thread talks to MPI; OpenMP threads never do */
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return nb_error(NB_ERR_STATE, "nb_dist_init_env: MPI_Init_thread failed");
    }
    nb_status st = nb_dist_init(d, NULL);
    if (st && !up) MPI_Finalize();
    if (!st) (*d)->finalize = !up;
    return st;
}

void nb_dist_free(nb_dist *d)
{
    if (!d) return;
    int down = 0;
    MPI_Finalized(&down);
    if (!down) {
        MPI_Comm_free(&d->comm);
        if (d->finalize) MPI_Finalize();
    }
    free(d);
}

/* "rank 12: ..." already names its rank (an outcome agreed before) */
static int names_rank(const char *msg)
{
    if (strncmp(msg, "rank ", 5)) return 0;
    const char *p = msg + 5;
    while (isdigit((unsigned char)*p)) p++;
    return p > msg + 5 && p[0] == ':' && p[1] == ' ';
}

static MPI_Datatype mpi_type(nb_dtype dt) { return dt == NB_F64 ? MPI_DOUBLE : MPI_FLOAT; }

nb_status nb_dist_allreduce_grads(nb_dist *d, nb_params *ps, double weight)
{
    if (!ps || !isfinite(weight)) return nb_error(NB_ERR_ARG, "nb_dist_allreduce_grads: no store, or weight %g", weight);
    void *g;
    int64_t n;
    nb_params_flat(ps, NULL, &g, &n);
    const nb_dtype dt = nb_params_dtype(ps);
    scale(g, n, dt, weight);
    if (!d || d->size == 1) return NB_OK;
    const double t0 = MPI_Wtime();
    for (int64_t off = 0; off < n; off += CHUNK)
        MPI_Allreduce(MPI_IN_PLACE, (char *)g + off * (int64_t)nb_dtype_size(dt), (int)(n - off < CHUNK ? n - off : CHUNK),
                      mpi_type(dt), MPI_SUM, d->comm);
    d->reduce_s += MPI_Wtime() - t0;
    d->reduce_calls++;
    return NB_OK;
}

nb_status nb_dist_broadcast_params(nb_dist *d, nb_params *ps, int root)
{
    if (!ps || root < 0 || root >= nb_dist_size(d))
        return nb_error(NB_ERR_ARG, "nb_dist_broadcast_params: no store, or root %d of %d ranks", root, nb_dist_size(d));
    if (!d || d->size == 1) return NB_OK;
    void *p;
    int64_t n;
    nb_params_flat(ps, &p, NULL, &n);
    const nb_dtype dt = nb_params_dtype(ps);
    for (int64_t off = 0; off < n; off += CHUNK)
        MPI_Bcast((char *)p + off * (int64_t)nb_dtype_size(dt), (int)(n - off < CHUNK ? n - off : CHUNK), mpi_type(dt),
                  root, d->comm);
    return NB_OK;
}

nb_status nb_dist_sum(nb_dist *d, double *v, int64_t n)
{
    if ((!v && n) || n < 0) return nb_error(NB_ERR_ARG, "nb_dist_sum: %lld values at %p", (long long)n, (void *)v);
    if (!d || d->size == 1) return NB_OK;
    for (int64_t off = 0; off < n; off += CHUNK)
        MPI_Allreduce(MPI_IN_PLACE, v + off, (int)(n - off < CHUNK ? n - off : CHUNK), MPI_DOUBLE, MPI_SUM, d->comm);
    return NB_OK;
}

nb_status nb_dist_agree(nb_dist *d, nb_status st)
{
    if (!d || d->size == 1) return st;
    /* the lowest failing rank and its status in one int: rank · 256 + status */
    int worst = st ? d->rank * 256 + (int)st : INT_MAX;
    MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MIN, d->comm);
    if (worst == INT_MAX) return NB_OK;
    const int who = worst / 256;
    char msg[MSG];
    snprintf(msg, sizeof msg, "%s", d->rank == who ? nb_last_error() : "");
    MPI_Bcast(msg, MSG, MPI_CHAR, who, d->comm);
    msg[MSG - 1] = 0;
    if (names_rank(msg)) return nb_error((nb_status)(worst % 256), "%s", msg);
    return nb_error((nb_status)(worst % 256), "rank %d: %s", who, msg);
}

nb_status nb_dist_same(nb_dist *d, const void *data, size_t bytes, const char *what)
{
    if (!data && bytes) return nb_error(NB_ERR_ARG, "nb_dist_same: %s: %zu bytes at NULL", what ? what : "data", bytes);
    if (!d || d->size == 1) return NB_OK;
    const uint64_t h = XXH3_64bits(data, bytes);
    uint64_t h0 = h;
    MPI_Bcast(&h0, 1, MPI_UINT64_T, 0, d->comm);
    int first = h != h0 ? d->rank : INT_MAX;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, d->comm);
    if (first == INT_MAX) return NB_OK;
    return nb_error(NB_ERR_STATE, "%s differs between ranks: rank %d's is not rank 0's", what ? what : "data", first);
}

#endif
