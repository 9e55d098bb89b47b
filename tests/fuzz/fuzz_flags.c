/* tests/fuzz/fuzz_flags.c — command lines: NUL-separated arguments through the apps' parser
 * (configuration keys, all of them or a few, --preset, --config, a command's own flags and their
 * numeric values). */
#include <stdlib.h>
#include <string.h>

#include "apps/app.h"
#include "tests/fuzz/fuzz.h"

enum { MAX_ARGS = 32 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    char *text = (char *)fuzz_text(data, size), *argv[MAX_ARGS];
    int argc = 0;
    for (char *p = text; argc < MAX_ARGS && p <= text + size; p += strlen(p) + 1) argv[argc++] = p;
    app_flag flags[] = {{.name = "checkpoint", .repeat = 1}, {.name = "k"}, {.name = "rows"},
                        {.name = "scale"}, {.name = "toy", .is_switch = 1}};
    const int nflags = (int)(sizeof flags / sizeof flags[0]);
    nb_train_cfg cfg;
    if (app_parse(argc, argv, "fuzz", "a command", flags, nflags, &cfg, argc % 2 ? NULL : APP_KEYS("data", "seed")) != APP_OK)
        return 0;
    int bad = 0;
    (void)app_flag_long(flags, nflags, "k", 5, &bad);
    (void)app_flag_long(flags, nflags, "rows", 8, &bad);
    (void)app_flag_double(flags, nflags, "scale", 1.0, &bad);
    (void)app_flag_str(flags, nflags, "checkpoint");
    char *json = nb_train_cfg_json(&cfg); /* what was accepted can be written */
    FUZZ_ASSERT(json != NULL);
    free(json);
    return 0;
}
