/* apps/app.h — what the nabla commands share: flags, checkpoints, data, output paths.
 *
 * One program, `nabla <command> [--flag value ...]`. Every command takes the configuration keys
 * (--latent, --beta, --data, ... see nb_train_keys_help) plus --preset, --config FILE and its own
 * flags. Precedence: defaults < --preset < --config < the other flags, wherever they appear.
 * Exit status: 0 done, 1 failed (a message on stderr), 2 bad usage.
 */
#ifndef NB_APPS_APP_H
#define NB_APPS_APP_H

#include "apps/image.h"
#include "nabla/nabla.h"

enum { APP_OK = 0, APP_FAIL = 1, APP_USAGE = 2, APP_MAX_FLAGS = 16, APP_MAX_REPEAT = 4 };

/* A command's own flag: --name VALUE (or --name for a switch). Repeatable flags collect up to
 * APP_MAX_REPEAT values. */
typedef struct app_flag {
    const char *name, *help, *def; /* def: the default shown in --help, NULL for none */
    int is_switch, repeat;
    int count;
    const char *value[APP_MAX_REPEAT];
} app_flag;

typedef struct app_cmd {
    const char *name, *summary;
    int (*run)(int argc, char **argv);
} app_cmd;

/* Parses argv (after the command name) into cfg and the command's flags; prints --help and
 * returns -1 when asked for help, APP_USAGE after a message on a bad flag, else APP_OK. keys
 * lists the configuration keys the command takes (NULL-terminated); NULL takes all of them and
 * --preset and --config too. A flag of the same name as a key replaces it. */
int app_parse(int argc, char **argv, const char *cmd, const char *summary, app_flag *flags,
              int nflags, nb_train_cfg *cfg, const char *const *keys);
#define APP_KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})
/* 1 when argv holds --name (or --name=...). */
int app_given(int argc, char **argv, const char *name);
const char *app_flag_str(const app_flag *flags, int nflags, const char *name);
long app_flag_long(const app_flag *flags, int nflags, const char *name, long def, int *bad);
double app_flag_double(const app_flag *flags, int nflags, const char *name, double def, int *bad);

/* Reports the last error of a failed call: "nabla <cmd>: <message>"; returns APP_FAIL. */
int app_fail(const char *cmd, const char *what);
int app_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A trained model rebuilt from its checkpoint. */
typedef struct app_model {
    nb_train_cfg cfg;
    nb_params *ps;
    nb_model m;
    int epoch;
} app_model;

nb_status app_load_model(const char *path, app_model *am);
void app_free_model(app_model *am);
/* The run a picture command reads and writes: --out DIR is the run's directory, as in `nabla
 * train --out DIR` (the model is DIR/checkpoint.safetensors, the pictures go beside it);
 * --checkpoint FILE names the model instead (pictures beside it unless --out says). With neither,
 * the last run `nabla train` finished, recorded in app_last_run_file. APP_USAGE or APP_FAIL
 * after a message saying what to pass. */
typedef struct app_run {
    char checkpoint[700], out[600];
} app_run;
int app_resolve_run(const char *cmd, const app_flag *flags, int nflags, app_run *run);
/* $XDG_STATE_HOME/nabla/last-run, else ~/.local/state/nabla/last-run: one line, the absolute
 * path of the last finished `nabla train` run; NULL without either variable. */
const char *app_last_run_file(char *buf, size_t size);
void app_last_run_save(const char *dir);
/* The --out and --checkpoint flags of the picture commands. */
#define APP_RUN_FLAGS                                                                                 \
    {.name = "out", .help = "the run's directory, as given to nabla train: read the model there, write "   \
                            "beside it", .def = "the last run of nabla train"},                        \
    {.name = "checkpoint", .help = "read this model instead (writing beside it unless --out says)"}

/* <dir>/<name> into buf; makes dir (and parents) first. */
nb_status app_out_path(const char *dir, const char *name, char *buf, size_t size);
/* Writes <dir>/<name>, grids of images stacked with their title and labels (apps/image.h,
 * 2-pixel gaps, each pixel 2x2), and says so; APP_FAIL after a message naming cmd otherwise. */
int app_write_images(const char *cmd, const char *dir, const char *name, const img_text *text, int n,
                     const nb_tensor *const *ts, const int *rows, int cols, int channels, int height, int width);
/* Opens <dir>/<name> for writing with its header line; NULL with nb_last_error() set. */
FILE *app_open_csv(const char *dir, const char *name, const char *header);

/* Test images idx[0..n) as the model takes them (and one-hot labels for a CVAE) on tp. */
nb_status app_images(nb_tape *tp, const app_model *am, const nb_dataset *ds, const int64_t *idx,
                     int64_t n, nb_tensor **x, nb_tensor **y);
/* The one-hot rows of labels[0..n) on tp. */
nb_tensor *app_onehot(nb_tape *tp, int64_t n, int nclasses, const int *labels);

/* What the data directory holds, for titles and reports: "Fashion-MNIST", "MNIST" (told apart
 * by the directory's name, as the IDX files are alike), else the directory's last part. */
const char *app_data_name(const char *dir, char *buf, size_t size);
/* One thing the data shows, for sentences: "garment", "digit", or "image". */
const char *app_data_noun(const char *dir);
/* Class k's name: Fashion-MNIST's ("Sandal"), else the label number. */
const char *app_class_name(const char *dir, int k, char *buf, size_t size);
/* A model in a few words: "VAE d=20", "linear AE d=32", "conv CVAE d=2", "β-VAE d=10 (β=4)". */
const char *app_model_name(const nb_train_cfg *cfg, char *buf, size_t size);

/* The 2-D denoising lesson: trains a small DAE on points of a curve plus N(0, sigma²) for steps
 * steps (a line of progress every tenth), writes denoise_toy.png (noisy inputs, their outputs,
 * the map on a grid) and denoise_toy.csv into out. */
int app_denoise_toy(const char *out, uint64_t seed, double sigma, int steps);

/* The commands */
int cmd_train(int argc, char **argv);
/* cmd_train, remembering the run as the last one (app_last_run_save) only when record is set:
 * the lessons train models of their own. */
int app_train(int argc, char **argv, int record);
int cmd_reconstruct(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_interpolate(int argc, char **argv);
int cmd_manifold(int argc, char **argv);
int cmd_scatter(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_traverse(int argc, char **argv);
int cmd_denoise(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
