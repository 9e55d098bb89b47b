/* tests/thread_check.c — one training step and one evaluation on 2 threads, for
 * ThreadSanitizer (scripts/tsan.sh). `thread_check [f64|f32|conv]`: f64 runs nabla's own
 * kernels alone (its GEMM and convolution loops), f32 adds oneDNN's GEMM and conv. */
#include <stdio.h>
#include <string.h>

#include "nabla/nabla.h"

int main(int argc, char **argv)
{
    const char *kind = argc > 1 ? argv[1] : "f64";
    const nb_dtype dt = strcmp(kind, "f64") ? NB_F32 : NB_F64;
    nb_set_threads(2);
    nb_dataset all;
    if (nb_dataset_load(&all, "/usr/share/datasets/fashion-mnist", "t10k")) {
        fprintf(stderr, "%s\n", nb_last_error());
        return 1;
    }
    nb_dataset ds = nb_dataset_view(&all, 0, 512);
    nb_model_cfg cfg = nb_model_defaults();
    cfg.channels = 1, cfg.height = cfg.width = 28;
    if (!strcmp(kind, "conv")) cfg.arch = NB_ARCH_CONV, cfg.conv1 = 8, cfg.conv2 = 16;
    nb_params *ps = nb_params_new(dt);
    nb_rng r = nb_rng_seed(1);
    nb_model m;
    nb_optim *o = NULL;
    nb_tape *tp = nb_tape_new();
    nb_status st = nb_model_init(&m, &cfg, ps, &r);
    if (!st && !(o = nb_optim_new(ps, nb_optim_defaults(NB_ADAM, 1e-3)))) st = NB_ERR_NOMEM;
    int64_t idx[256];
    for (int i = 0; i < 256; i++) idx[i] = i;
    nb_tensor *x, *y;
    nb_loss_terms t;
    nb_eval e = {0};
    if (!st) st = nb_model_batch(tp, &m, &ds, idx, 256, NB_BIN_DYNAMIC, &r, &x, &y);
    if (!st) st = nb_model_loss(tp, &m, &(nb_batch){x, x, NULL}, &(nb_loss_opts){.beta = 1, .rng = &r}, &t);
    if (!st) st = nb_backward(tp, t.loss);
    if (!st) st = nb_optim_step(o);
    if (!st) st = nb_model_evaluate(&m, &ds, 128, NB_BIN_NONE, NULL, 1, &e);
    if (st) fprintf(stderr, "thread_check %s: %s\n", kind, nb_last_error());
    else printf("thread_check %s: a step and an evaluation on 2 threads, test loss %.2f\n", kind, e.elbo_loss);
    nb_tape_free(tp);
    nb_optim_free(o);
    nb_params_free(ps);
    nb_dataset_free(&all);
    return st != NB_OK;
}
