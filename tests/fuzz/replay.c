/* tests/fuzz/replay.c — a harness without libFuzzer: runs LLVMFuzzerTestOneInput on every file
 * named on the command line, or in a directory named there. meson test replays the seed and
 * regression corpora this way, so a crash once found stays fixed. Prints TAP. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)(n > 0 ? n : 1));
    const size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)n) return free(buf), 0;
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 1;
}

int main(int argc, char **argv)
{
    FILE *tap = fdopen(dup(1), "w"); /* the harnesses may silence stdout */
    if (!tap) return 1;
    int files = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb)) continue; /* an empty regression corpus need not exist */
        if (!S_ISDIR(sb.st_mode)) {
            files++, bad += !run_file(argv[i]);
            continue;
        }
        DIR *d = opendir(argv[i]);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            files++, bad += !run_file(path);
        }
        if (d) closedir(d);
    }
    /* reaching here means no input crashed or tripped a sanitizer */
    fprintf(tap, "%s 1 - %d inputs replayed without a crash%s\n1..1\n", bad || !files ? "not ok" : "ok", files,
           bad ? " (some could not be read)" : !files ? " (no inputs found)" : "");
    fclose(tap);
    return bad || !files;
}
