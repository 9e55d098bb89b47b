/* tensor/file.h — internal: files replaced atomically. A writer creates a temporary file beside
 * its target, fills it, and only a complete file is renamed over the target: a crash or a full
 * disk leaves the old file as it was. (safetensors, PNG pictures, plots.) */
#ifndef NB_FILE_H
#define NB_FILE_H

#include "nabla/tensor.h"

/* Creates <path>.tmp.XXXXXX with the target's mode, or 0644 for a new target. Returns its file
 * descriptor and its name (malloc'd) in *tmp; -1 with nb_last_error() set on failure. */
int nb_tmp_create(const char *path, char **tmp);
/* Makes dir and any missing parents (mkdir -p); NB_ERR_IO naming the one that failed. */
nb_status nb_mkdirs(const char *dir);
/* When ok, renames tmp over path and syncs the directory (best effort); otherwise, or when the
 * rename fails, removes tmp. Frees the name. NB_ERR_IO names path on a failed rename. */
nb_status nb_tmp_finish(const char *path, char *tmp, int ok);

#endif
