/* bench/bench_is.c — nabla's side of the importance-sampling benchmark (bench/torch_is.py): the
 * IS estimate of log p(x) with k samples for the first N test images, from a checkpoint of the
 * MLP VAE; and its GEMM floor, the decoder's and encoder's GEMMs alone on dnnl_sgemm at the
 * same shapes. Prints one JSON object.
 *
 *   build/bench/bench_is CHECKPOINT --k 1000 --images 1000 --threads 2 [--floor]
 */
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nabla/nabla.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The GEMMs the estimate cannot avoid for n images and k samples of an MLP VAE D-H-d: the
 * encoder once per image, the decoder once per sample, in chunks of `rows` rows. */
static double floor_s(int64_t n, int64_t k, int D, int H, int d)
{
    const int64_t rows = 16384 / k > 0 ? 16384 / k * k : k;
    float *a = calloc((size_t)rows * (size_t)(D > H ? D : H), sizeof *a);
    float *b = calloc((size_t)rows * (size_t)(D > H ? D : H), sizeof *b);
    float *w = calloc((size_t)D * (size_t)H, sizeof *w);
    if (!a || !b || !w) return NAN;
    const double t0 = now();
    for (int64_t done = 0; done < n * k; done += rows) {
        const int64_t r = n * k - done < rows ? n * k - done : rows;
        dnnl_sgemm('N', 'T', r, H, d, 1, a, d, w, d, 0, b, H); /* z -> hidden */
        dnnl_sgemm('N', 'T', r, D, H, 1, b, H, w, H, 0, a, D); /* hidden -> pixels */
    }
    dnnl_sgemm('N', 'T', n, H, D, 1, a, D, w, D, 0, b, H); /* the encoder */
    dnnl_sgemm('N', 'T', n, 2 * d, H, 1, b, H, w, H, 0, a, 2 * d);
    const double t = now() - t0;
    free(a), free(b), free(w);
    return t;
}

int main(int argc, char **argv)
{
    const char *ckpt = NULL, *data = "/usr/share/datasets/fashion-mnist";
    int k = 1000, threads = 2, floor_only = 0;
    int64_t images = 1000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--k") && i + 1 < argc) k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--images") && i + 1 < argc) images = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--floor")) floor_only = 1;
        else if (!ckpt) ckpt = argv[i];
        else return fprintf(stderr, "bench_is: unknown argument %s\n", argv[i]), 2;
    }
    nb_set_threads(threads);
    if (floor_only) {
        printf("{\"gemm_floor_s\": %.4f, \"k\": %d, \"images\": %lld, \"threads\": %d}\n",
               floor_s(images, k, 784, 400, 20), k, (long long)images, threads);
        return 0;
    }
    nb_train_cfg cfg;
    nb_params *ps = nb_params_new(NB_F32);
    nb_model m;
    nb_rng r = nb_rng_seed(0);
    nb_dataset test;
    if (!ckpt || nb_checkpoint_config(ckpt, &cfg, NULL, NULL) || nb_model_init(&m, &cfg.model, ps, &r) ||
        nb_checkpoint_load(ckpt, ps, NULL) || nb_dataset_load(&test, data, "t10k")) {
        fprintf(stderr, "bench_is: %s\n", ckpt ? nb_last_error() : "give a checkpoint");
        return 1;
    }
    double ll, se;
    const double t0 = now();
    if (nb_model_log_likelihood(&m, &test, images, k, NB_BIN_NONE, 1, &ll, &se)) {
        fprintf(stderr, "bench_is: %s\n", nb_last_error());
        return 1;
    }
    printf("{\"seconds\": %.4f, \"ll\": %.10f, \"se\": %.10f, \"k\": %d, \"images\": %lld, \"threads\": %d}\n",
           now() - t0, ll, se, k, (long long)images, threads);
    nb_dataset_free(&test);
    if (nb_profile_enabled()) nb_profile_print(stderr); /* NB_PROFILE=1: where the time went */
    nb_params_free(ps);
    return 0;
}
