/* tensor/rng.c — Philox4x32-10 (Salmon et al., SC'11) and the distributions built on it. */

#include "nabla/rng.h"
#include "tensor/error.h"
#include "tensor/kernels.h"

void nb_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

static void block(uint64_t key, uint64_t idx, uint32_t out[4])
{
    const uint32_t c[4] = {(uint32_t)idx, (uint32_t)(idx >> 32), 0, 0};
    const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    nb_philox4x32(c, k, out);
}

nb_rng nb_rng_seed(uint64_t seed) { return (nb_rng){.key = seed}; }

nb_rng nb_rng_fork(const nb_rng *r, uint64_t stream)
{
    /* the high counter words are never used by draws, so this block is disjoint from them */
    const uint32_t c[4] = {(uint32_t)stream, (uint32_t)(stream >> 32), 0x6e61626cu, 0x61666f6bu};
    const uint32_t k[2] = {(uint32_t)r->key, (uint32_t)(r->key >> 32)};
    uint32_t o[4];
    nb_philox4x32(c, k, o);
    return (nb_rng){.key = (uint64_t)o[0] | (uint64_t)o[1] << 32};
}

static inline float u24(uint32_t w) { return (float)(w >> 8) * 0x1p-24f; }
static inline double u53(uint32_t a, uint32_t b)
{
    return (double)((uint64_t)(a >> 5) << 26 | (b >> 6)) * 0x1p-53;
}

uint32_t nb_rng_u32(nb_rng *r)
{
    uint32_t o[4];
    block(r->key, r->counter++, o);
    return o[0];
}

double nb_rng_uniform1(nb_rng *r)
{
    uint32_t o[4];
    block(r->key, r->counter++, o);
    return u53(o[0], o[1]);
}

uint64_t nb_rng_below(nb_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the biased top */
    for (;;) {
        uint32_t o[4];
        block(r->key, r->counter++, o);
        uint64_t v = (uint64_t)o[0] << 32 | o[1];
        if (v < limit) return v % n;
    }
}

enum { PAR_BLOCKS = 1 << 14 };

/* One block makes 4 f32 or 2 f64 uniforms, or the same number of normals (Box-Muller pairs).
 * Value g of a fill comes from block base + g / per, lane g % per, and from nothing else: so a
 * fill can start at any value (a shard's rows) and give what the whole fill gives there. */
typedef enum { DIST_UNIFORM, DIST_NORMAL, DIST_BERNOULLI } dist;

typedef struct fill_job {
    nb_tensor *t;
    dist d;
    double p0, p1;
    uint64_t key, base;
    int64_t first, n; /* t holds values [first, first + n) of the fill */
    int per;
} fill_job;

enum { CHUNK_BLOCKS = 64 };

/* Blocks [b0, b0 + CHUNK_BLOCKS), and none from end on: their uniforms, then (normals)
 * Box-Muller on all their pairs at once through the kernels' vector log and sincos. */
static void fill_chunk(const fill_job *j, int64_t b0, int64_t end)
{
    const int64_t b1 = end - b0 < CHUNK_BLOCKS ? end : b0 + CHUNK_BLOCKS;
    double v[4 * CHUNK_BLOCKS], w[2 * CHUNK_BLOCKS]; /* values; the pairs' second halves */
    for (int64_t b = b0; b < b1; b++) {
        uint32_t o[4];
        block(j->key, j->base + (uint64_t)b, o);
        double *u = v + (b - b0) * j->per;
        if (j->per == 4)
            for (int k = 0; k < 4; k++) u[k] = u24(o[k]);
        else
            u[0] = u53(o[0], o[1]), u[1] = u53(o[2], o[3]);
    }
    const int64_t nv = (b1 - b0) * j->per;
    if (j->d == DIST_NORMAL) { /* pairs (v[2i], v[2i + 1]) -> cos and sin normals */
        for (int64_t i = 0; i < nv / 2; i++) w[i] = v[2 * i + 1], v[i] = v[2 * i];
        nb_kernels(NB_F64)->box_muller(nv / 2, v, w, j->p0, j->p1);
        for (int64_t i = nv / 2 - 1; i >= 0; i--) v[2 * i + 1] = w[i], v[2 * i] = v[i];
    } else {
        for (int64_t q = 0; q < nv; q++)
            v[q] = j->d == DIST_UNIFORM ? j->p0 + (j->p1 - j->p0) * v[q] : (v[q] < j->p0 ? 1.0 : 0.0);
    }
    /* the values this tensor holds: [first, first + n) of the fill */
    int64_t g0 = b0 * j->per, g1 = g0 + nv;
    if (g0 < j->first) g0 = j->first;
    if (g1 > j->first + j->n) g1 = j->first + j->n;
    if (j->t->dtype == NB_F64)
        for (int64_t g = g0; g < g1; g++) ((double *)j->t->data)[g - j->first] = v[g - b0 * j->per];
    else
        for (int64_t g = g0; g < g1; g++) ((float *)j->t->data)[g - j->first] = (float)v[g - b0 * j->per];
}

nb_status nb_rng_shard(nb_rng *r, int64_t first, int64_t total)
{
    if (!r) return nb_error(NB_ERR_ARG, "nb_rng_shard: the rng is NULL");
    if (first < 0 || total < 0 || (total == 0 && first != 0))
        return nb_error(NB_ERR_ARG, "nb_rng_shard: rows from %lld of a batch of %lld (want 0 <= first, "
                        "1 <= total; 0, 0 removes the shard)", (long long)first, (long long)total);
    r->row0 = first, r->rows = total;
    return NB_OK;
}

static void fill(nb_rng *r, nb_tensor *t, dist d, double p0, double p1)
{
    fill_job j = {.t = t, .d = d, .p0 = p0, .p1 = p1, .key = r->key, .base = r->counter,
                  .n = nb_numel(t), .per = t->dtype == NB_F64 ? 2 : 4};
    int64_t total = j.n; /* values in the whole fill */
    if (r->rows > 0 && t->ndim > 0) { /* a shard: rows [row0, row0 + dim 0) of the batch's fill */
        int64_t width = 1;
        for (int i = 1; i < t->ndim; i++) width *= t->shape[i];
        j.first = r->row0 * width;
        total = (r->rows > r->row0 + t->shape[0] ? r->rows : r->row0 + t->shape[0]) * width;
    }
    const int64_t b0 = j.first / j.per, b1 = (j.first + j.n + j.per - 1) / j.per;
    if (b1 - b0 > PAR_BLOCKS) {
#pragma omp parallel for schedule(static)
        for (int64_t c0 = b0; c0 < b1; c0 += CHUNK_BLOCKS) fill_chunk(&j, c0, b1);
    } else { /* no parallel region at all: even an if(0) one costs a team and a futex round trip */
        for (int64_t c0 = b0; c0 < b1; c0 += CHUNK_BLOCKS) fill_chunk(&j, c0, b1);
    }
    r->counter = j.base + (uint64_t)((total + j.per - 1) / j.per);
}

void nb_rng_uniform(nb_rng *r, nb_tensor *t, double lo, double hi) { fill(r, t, DIST_UNIFORM, lo, hi); }
void nb_rng_normal(nb_rng *r, nb_tensor *t, double mean, double std) { fill(r, t, DIST_NORMAL, mean, std); }
void nb_rng_bernoulli(nb_rng *r, nb_tensor *t, double p) { fill(r, t, DIST_BERNOULLI, p, 0); }
