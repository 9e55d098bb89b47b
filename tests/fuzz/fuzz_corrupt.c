/* tests/fuzz/fuzz_corrupt.c — corruption specs ("gaussian:0.3,block:16"): whatever parses must
 * print and parse back the same, and apply to a batch of images without harm. */
#include <string.h>

#include "nabla/models.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_corruption c, back;
    if (nb_corruption_parse(&c, fuzz_text(data, size))) return 0;
    char once[512], twice[512];
    nb_corruption_str(&c, once, sizeof once);
    FUZZ_ASSERT(!nb_corruption_parse(&back, once));
    nb_corruption_str(&back, twice, sizeof twice);
    FUZZ_ASSERT(!strcmp(once, twice));
    nb_tape *tp = nb_tape_new();
    nb_rng r = nb_rng_seed(1);
    nb_tensor *x = nb_uniform(tp, &r, NB_F32, NB_SHAPE(2, 1, 5, 7), 0, 1);
    nb_tensor *y = nb_corrupt(tp, &c, x, 1, 5, 7, &r);
    for (int64_t i = 0; y && i < nb_numel(y); i++) FUZZ_ASSERT(nb_get(y, i) >= 0 && nb_get(y, i) <= 1);
    nb_tape_free(tp);
    return 0;
}
