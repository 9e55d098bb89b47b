/* tests/fuzz/fuzz.h — what the harnesses share.
 *
 * Each harness defines LLVMFuzzerTestOneInput. Built with clang -fsanitize=fuzzer
 * (-Dfuzz=true, scripts/fuzz.sh) it is a libFuzzer target; built with replay.c instead (always,
 * by meson test) it replays the seed and regression corpora under tests/fuzz/.
 */
#ifndef NB_FUZZ_H
#define NB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a file the library can open by name (an in-memory file, rewritten each call). */
const char *fuzz_file(const uint8_t *data, size_t size);
/* The input as a NUL-terminated string (a copy, valid until the next call). */
const char *fuzz_text(const uint8_t *data, size_t size);
/* Sends the apps' stdout to /dev/null (help text, results): it is not the harness's report. */
void fuzz_quiet(void);

/* A property the library promises: a violated one is a crash, like a sanitizer report. */
#define FUZZ_ASSERT(cond)                                                                    \
    do {                                                                                     \
        if (!(cond)) __builtin_trap();                                                       \
    } while (0)

#endif
