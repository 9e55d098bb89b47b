/* tensor/file.c — see file.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor/error.h"
#include "tensor/file.h"

int nb_tmp_create(const char *path, char **tmp)
{
    static const char suffix[] = ".tmp.XXXXXX";
    const size_t n = strlen(path);
    if (!(*tmp = malloc(n + sizeof suffix))) {
        nb_error(NB_ERR_NOMEM, "%s: out of memory", path);
        return -1;
    }
    memcpy(*tmp, path, n);
    memcpy(*tmp + n, suffix, sizeof suffix);
    /* mkstemp makes 0600; the target keeps its mode, a new one gets 0644 (reading the umask
     * would mean setting it, a race with other threads) */
    struct stat sb;
    const mode_t mode = stat(path, &sb) == 0 ? sb.st_mode & 07777 : 0644;
    const int fd = mkstemp(*tmp);
    if (fd >= 0 && fchmod(fd, mode) == 0) return fd;
    nb_error(NB_ERR_IO, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
    if (fd >= 0) close(fd), unlink(*tmp);
    free(*tmp);
    *tmp = NULL;
    return -1;
}

nb_status nb_mkdirs(const char *dir)
{
    char buf[1024];
    if ((size_t)snprintf(buf, sizeof buf, "%s", dir) >= sizeof buf)
        return nb_error(NB_ERR_ARG, "%s: path too long", dir);
    for (char *p = buf + 1;; p++)
        if (*p == '/' || !*p) {
            const char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) return nb_error(NB_ERR_IO, "%s: %s", buf, strerror(errno));
            if (!c) return NB_OK;
            *p = c;
        }
}

/* Makes the rename itself durable; some file systems cannot sync a directory. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    const int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

nb_status nb_tmp_finish(const char *path, char *tmp, int ok)
{
    nb_status st = NB_OK;
    if (ok && rename(tmp, path))
        st = nb_error(NB_ERR_IO, "%s: cannot replace it: %s", path, strerror(errno));
    if (!ok || st)
        unlink(tmp);
    else
        sync_dir(path);
    free(tmp);
    return st;
}
