/* tests/fuzz/make_seeds.c — writes the seed corpora of the harnesses that need files nabla
 * writes (checkpoints, safetensors): make_seeds DIR, then copy DIR/<harness>/ into corpus/.
 * The text seeds (configs, corruption specs, flags) and the IDX seeds are plain files in
 * corpus/, written by hand and by make_seeds.py. */
#include <stdio.h>
#include <sys/stat.h>

#include "nabla/nabla.h"

static void checkpoint(const char *dir, const char *name, const char *kv[], int nkv)
{
    nb_train_cfg c = nb_train_defaults();
    for (int i = 0; i < nkv; i += 2) nb_train_set(&c, kv[i], kv[i + 1]);
    c.model.channels = 1, c.model.height = c.model.width = 4;
    if (c.model.kind == NB_CVAE) c.model.nclasses = 3;
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(1);
    nb_model m;
    if (nb_model_init(&m, &c.model, ps, &r)) {
        fprintf(stderr, "%s: %s\n", name, nb_last_error());
        return;
    }
    nb_optim *o = nb_optim_new(ps, c.optim);
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint/%s.safetensors", dir, name);
    if (nb_checkpoint_save(path, ps, o, &c, 1, 7)) fprintf(stderr, "%s: %s\n", name, nb_last_error());
    nb_optim_free(o);
    nb_params_free(ps);
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint", argv[1]);
    mkdir(argv[1], 0755), mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/safetensors", argv[1]);
    mkdir(path, 0755);
    checkpoint(argv[1], "vae-mlp", (const char *[]){"hidden", "5", "latent", "2"}, 4);
    checkpoint(argv[1], "vae-conv", (const char *[]){"arch", "conv", "conv-channels", "2", "latent", "2"}, 6);
    checkpoint(argv[1], "cvae-sgd", (const char *[]){"model", "cvae", "hidden", "3", "latent", "2", "optimizer", "sgd",
                                                    "momentum", "0.9"}, 10);
    checkpoint(argv[1], "ae-pixel", (const char *[]){"model", "vae", "decoder", "gaussian-pixel", "hidden", "3",
                                                    "latent", "2", "optimizer", "adagrad"}, 10);
    /* plain safetensors: f32 and f64, 0- to 4-d, a non-contiguous view, metadata */
    nb_tape *tp = nb_tape_new();
    nb_rng r = nb_rng_seed(2);
    nb_tensor *a = nb_uniform(tp, &r, NB_F32, NB_SHAPE(3, 4), -1, 1), *b = nb_scalar(tp, NB_F64, 2.5);
    nb_tensor *c = nb_transpose(tp, nb_uniform(tp, &r, NB_F64, NB_SHAPE(2, 3, 1, 2), 0, 1), 0, 3);
    const nb_tensor *ts[] = {a, b, c};
    snprintf(path, sizeof path, "%s/safetensors/mixed.safetensors", argv[1]);
    nb_st_save(path, 3, (const char *[]){"a", "b.scalar", "c"}, ts, 1, (const char *[]){"note"},
               (const char *[]){"seed \"quoted\" ü"});
    snprintf(path, sizeof path, "%s/safetensors/empty.safetensors", argv[1]);
    nb_st_save(path, 0, NULL, NULL, 0, NULL, NULL);
    nb_tape_free(tp);
    return 0;
}
