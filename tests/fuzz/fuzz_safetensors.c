/* tests/fuzz/fuzz_safetensors.c — safetensors files: open, then read every tensor it admits. */
#include "nabla/nn.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_safetensors *f = (nb_safetensors *)&f;
    const nb_status st = nb_st_open(&f, fuzz_file(data, size));
    FUZZ_ASSERT(st ? f == NULL : f != NULL);
    if (st) return 0;
    for (int i = 0; i < nb_st_count(f); i++) {
        nb_tensor t;
        if (nb_st_get(f, nb_st_name(f, i), &t)) continue;
        volatile double sum = 0;
        for (int64_t j = 0, n = nb_numel(&t); j < n; j++) sum += nb_get(&t, j);
    }
    (void)nb_st_meta(f, "format");
    nb_st_close(f);
    return 0;
}
