/* tests/fuzz/fuzz_checkpoint.c — checkpoints: the stored configuration, the model it builds, and
 * the parameters and optimizer state loaded into it. */
#include "nabla/models.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    nb_train_cfg c;
    int epoch;
    int64_t step;
    if (nb_checkpoint_config(path, &c, &epoch, &step)) return 0;
    /* a model a checkpoint may ask for can still be large: build the ones that fit a fuzzer's
     * memory; the library bounds the rest itself (tests/test_reliability.c) */
    const int64_t d = (int64_t)c.model.channels * c.model.height * c.model.width;
    int64_t width = c.model.latent + c.model.conv2;
    for (int i = 0; i < c.model.nhidden && i < NB_MAX_HIDDEN; i++) width += c.model.hidden[i];
    if (d * width > (1 << 22)) return 0;
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(1);
    nb_model m;
    if (!nb_model_init(&m, &c.model, ps, &r)) {
        nb_optim *o = nb_optim_new(ps, c.optim);
        (void)nb_checkpoint_load(path, ps, o);
        nb_optim_free(o);
    }
    nb_params_free(ps);
    return 0;
}
