/* tests/fuzz/fuzz_idx.c — IDX files, raw or gzip: the first byte picks 1, 2 or 3 dims. */
#include <stdlib.h>

#include "nabla/nn.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int64_t dims[3];
    uint8_t *px = NULL;
    const nb_status st = nb_idx_read(fuzz_file(data + 1, size - 1), 1 + data[0] % 3, dims, &px);
    /* a success hands over exactly the declared bytes; a failure hands over nothing */
    FUZZ_ASSERT(st ? px == NULL : px != NULL && dims[0] > 0 && dims[1] > 0 && dims[2] > 0);
    if (!st) {
        volatile uint8_t sum = 0;
        for (int64_t i = 0; i < dims[0] * dims[1] * dims[2]; i++) sum += px[i];
    }
    free(px);
    return 0;
}
