/* tests/fuzz/fuzz_config.c — JSON configuration files (--config, config.json, a checkpoint's):
 * whatever parses must survive the round trip to JSON and back unchanged. */
#include <stdlib.h>
#include <string.h>

#include "models/internal.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_train_cfg c = nb_train_defaults();
    if (nb__train_cfg_from_json(&c, fuzz_text(data, size), "fuzz")) return 0;
    char *once = nb_train_cfg_json(&c);
    nb_train_cfg back = nb_train_defaults();
    FUZZ_ASSERT(once && !nb__train_cfg_from_json(&back, once, "round trip"));
    char *twice = nb_train_cfg_json(&back);
    FUZZ_ASSERT(twice && !strcmp(once, twice));
    free(once);
    free(twice);
    return 0;
}
