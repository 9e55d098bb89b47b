/* tests/fuzz/fuzz_util.c — see fuzz.h. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"

const char *fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("nb_fuzz", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) abort();
    return path;
}

const char *fuzz_text(const uint8_t *data, size_t size)
{
    static char *buf;
    static size_t cap;
    if (size + 1 > cap) {
        free(buf);
        cap = size + 1;
        if (!(buf = malloc(cap))) abort();
    }
    memcpy(buf, data, size);
    buf[size] = 0;
    return buf;
}

void fuzz_quiet(void)
{
    static int done;
    if (done++) return;
    /* stdout only: libFuzzer reports on stderr (scripts/fuzz.sh adds -close_fd_mask for the
     * flags harness, whose usage messages would drown it) */
    if (!freopen("/dev/null", "w", stdout)) abort();
}
