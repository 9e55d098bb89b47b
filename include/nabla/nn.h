/* nabla/nn.h — layers, activations, losses, optimizers, initialisers, parameter files, data.
 *
 * Everything here follows PyTorch's semantics, so that a PyTorch model ports line by line:
 * weight layouts ([out, in] for Linear, [out, in, kh, kw] for Conv2d, [in, out, kh, kw] for
 * ConvTranspose2d), NCHW images, default initialisers, and optimizer update formulas.
 *
 * Layers are small caller-allocated structs holding parameter pointers; *_init registers the
 * parameters under "<name>.weight" and "<name>.bias" (PyTorch's state_dict names) and
 * initialises them as PyTorch does; *_fwd applies the layer on a tape.
 */
#ifndef NB_NN_H
#define NB_NN_H

#include "autograd.h"
#include "op.h"

#ifdef __cplusplus
extern "C" {
#endif

/* nn's layers and losses as ops (nabla/op.h), *n of them: what a coverage test walks. */
NB_API const nb_op_def *const *nb_nn_ops(int *n);

/* ---- layers -------------------------------------------------------------------------------- */

/* y = x·wᵀ + b. x (..., in), w (out, in), b (out) or NULL; y (..., out). One fused op. */
NB_API nb_tensor *nb_linear(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b);

typedef struct nb_linear_layer {
    nb_tensor *weight, *bias; /* bias is NULL without one */
    int64_t in, out;
} nb_linear_layer;

NB_API nb_status nb_linear_init(nb_linear_layer *l, nb_params *ps, const char *name, int64_t in,
                                int64_t out, int bias, nb_rng *rng);
NB_API nb_tensor *nb_linear_fwd(nb_tape *tp, const nb_linear_layer *l, nb_tensor *x);

/* Convolution geometry, per spatial dim (h, w). out_pad is for transposed convolutions. */
typedef struct nb_conv_cfg {
    int stride[2], pad[2], out_pad[2], dilation[2];
} nb_conv_cfg;

/* The common square case: stride s, padding p, no output padding, no dilation. */
NB_API nb_conv_cfg nb_conv(int stride, int pad);

/* x (N, C, H, W), w (O, C, kh, kw), b (O) or NULL → (N, O, H', W'), PyTorch's Conv2d. */
NB_API nb_tensor *nb_conv2d(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_conv_cfg c);
/* x (N, C, H, W), w (C, O, kh, kw), b (O) or NULL → (N, O, H', W') with
 * H' = (H-1)·stride - 2·pad + dilation·(kh-1) + out_pad + 1, PyTorch's ConvTranspose2d. */
NB_API nb_tensor *nb_conv_transpose2d(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                                      nb_conv_cfg c);
/* The output size of one spatial dim, or -1 when the geometry is invalid. */
NB_API int64_t nb_conv_out_size(int64_t in, int k, int stride, int pad, int dilation);
NB_API int64_t nb_conv_transpose_out_size(int64_t in, int k, int stride, int pad, int out_pad,
                                          int dilation);

typedef struct nb_conv_layer {
    nb_tensor *weight, *bias;
    nb_conv_cfg cfg;
    int transposed;
} nb_conv_layer;

NB_API nb_status nb_conv2d_init(nb_conv_layer *l, nb_params *ps, const char *name, int in_ch,
                                int out_ch, int k, nb_conv_cfg cfg, int bias, nb_rng *rng);
NB_API nb_status nb_conv_transpose2d_init(nb_conv_layer *l, nb_params *ps, const char *name,
                                          int in_ch, int out_ch, int k, nb_conv_cfg cfg,
                                          int bias, nb_rng *rng);
NB_API nb_tensor *nb_conv_fwd(nb_tape *tp, const nb_conv_layer *l, nb_tensor *x);

/* ---- losses -------------------------------------------------------------------------------- */
/* One convention for every loss (see docs/loss-units.md): the per-element terms are summed over
 * every dim but the first (the batch), then NB_REDUCE_SUM sums and NB_REDUCE_MEAN averages
 * over the batch, giving a scalar; NB_REDUCE_NONE keeps one value per example, shape (B). */

typedef enum nb_reduce { NB_REDUCE_MEAN, NB_REDUCE_SUM, NB_REDUCE_NONE } nb_reduce;

/* -[t·log σ(l) + (1-t)·log(1-σ(l))], computed stably as softplus(l) - t·l. */
NB_API nb_tensor *nb_bce_logits(nb_tape *tp, nb_tensor *logits, nb_tensor *target, nb_reduce r);
/* (pred - target)² */
NB_API nb_tensor *nb_mse(nb_tape *tp, nb_tensor *pred, nb_tensor *target, nb_reduce r);
/* -log N(x; mean, exp(logvar)) = ½(log 2π + logvar + (x-mean)²·exp(-logvar)), the constant
 * included. logvar broadcasts: a scalar (shared), per element, or anything in between. */
NB_API nb_tensor *nb_gaussian_nll(nb_tape *tp, nb_tensor *x, nb_tensor *mean, nb_tensor *logvar,
                                  nb_reduce r);
/* KL(N(mu, exp(logvar)) ‖ N(0, I)) = -½(1 + logvar - mu² - exp(logvar)), analytic. */
NB_API nb_tensor *nb_kl_normal(nb_tape *tp, nb_tensor *mu, nb_tensor *logvar, nb_reduce r);

/* log N(x; mean, exp(logvar)) elementwise, no reduction, broadcasting (the constant included):
 * a building block for likelihoods, priors and importance weights. mean NULL means 0, logvar
 * NULL means 0 (unit variance). */
NB_API nb_tensor *nb_normal_log_prob(nb_tape *tp, nb_tensor *x, nb_tensor *mean, nb_tensor *logvar);

/* ---- initialisers -------------------------------------------------------------------------- */

/* PyTorch's fan-in and fan-out of a weight: dims 1 and 0 times the receptive field. */
NB_API void nb_fan(const nb_tensor *w, int64_t *fan_in, int64_t *fan_out);
NB_API void nb_init_uniform(nb_tensor *t, nb_rng *rng, double lo, double hi);
NB_API void nb_init_normal(nb_tensor *t, nb_rng *rng, double mean, double std);
NB_API void nb_init_constant(nb_tensor *t, double v);
/* U(±gain·√(3/fan_in)), gain = √(2/(1+a²)): a = √5 is PyTorch's default for Linear and Conv. */
NB_API void nb_init_kaiming_uniform(nb_tensor *w, nb_rng *rng, double a);
NB_API void nb_init_kaiming_normal(nb_tensor *w, nb_rng *rng, double a);
NB_API void nb_init_xavier_uniform(nb_tensor *w, nb_rng *rng, double gain);
NB_API void nb_init_xavier_normal(nb_tensor *w, nb_rng *rng, double gain);

/* ---- optimizers ---------------------------------------------------------------------------- */

typedef enum nb_optim_kind { NB_SGD, NB_ADAM, NB_ADAMW, NB_ADAGRAD } nb_optim_kind;

typedef struct nb_optim_cfg {
    nb_optim_kind kind;
    double lr;
    double weight_decay;  /* L2 added to the gradient; AdamW: decoupled decay */
    double momentum;      /* SGD */
    double dampening;     /* SGD */
    int nesterov;         /* SGD */
    double beta1, beta2;  /* Adam, AdamW */
    double eps;           /* Adam, AdamW, Adagrad */
    double lr_decay;      /* Adagrad */
    double initial_accumulator; /* Adagrad */
    double clip_norm;     /* > 0: scale gradients so their global L2 norm is at most this */
} nb_optim_cfg;

/* PyTorch's defaults for each optimizer, at learning rate lr. */
NB_API nb_optim_cfg nb_optim_defaults(nb_optim_kind kind, double lr);

typedef struct nb_optim nb_optim;

/* An optimizer over every parameter of ps, registered before this call. */
NB_API nb_optim *nb_optim_new(nb_params *ps, nb_optim_cfg cfg);
NB_API void nb_optim_free(nb_optim *o);
/* Checks the gradients are finite (else NB_ERR_NAN naming the first bad parameter and index,
 * parameters untouched), clips, applies one update, zeroes the gradients. */
NB_API nb_status nb_optim_step(nb_optim *o);
NB_API nb_status nb_optim_set_lr(nb_optim *o, double lr);
NB_API double nb_optim_lr(const nb_optim *o);
NB_API int64_t nb_optim_steps(const nb_optim *o);
/* The L2 norm of all gradients before clipping, from the last step. */
NB_API double nb_optim_grad_norm(const nb_optim *o);
/* The optimizer state, for checkpoints: per-parameter moments as tensors over flat blocks laid
 * out like the parameters (state[k] has one tensor per parameter; NULL when unused), and the
 * step count. Restore by writing into the same tensors and calling nb_optim_set_steps. */
NB_API int nb_optim_state_count(const nb_optim *o); /* 0, 1 or 2 moment blocks */
NB_API nb_tensor *nb_optim_state(nb_optim *o, int k, int param);
NB_API const char *nb_optim_state_name(const nb_optim *o, int k); /* "momentum", "exp_avg", ... */
NB_API nb_status nb_optim_set_steps(nb_optim *o, int64_t steps);

/* Learning-rate schedules, evaluated per epoch (PyTorch's StepLR and ExponentialLR). */
typedef enum nb_lr_kind { NB_LR_CONSTANT, NB_LR_STEP, NB_LR_EXPONENTIAL } nb_lr_kind;
typedef struct nb_lr_schedule {
    nb_lr_kind kind;
    double gamma;  /* factor */
    int step_size; /* NB_LR_STEP: epochs between factors */
} nb_lr_schedule;
NB_API double nb_lr_at(nb_lr_schedule s, double base_lr, int epoch);

/* ---- parameter files (safetensors) --------------------------------------------------------- */
/* The safetensors format: an 8-byte little-endian header length, a JSON header mapping each
 * name to {dtype, shape, data_offsets} plus optional "__metadata__" string pairs, then the
 * data. Files move to and from PyTorch (safetensors.torch.load_file / save_file). */

typedef struct nb_safetensors nb_safetensors;

/* Reads and validates a whole file (header JSON, dtypes, shapes, offsets within the data, no
 * overlap). On failure returns non-zero with nb_last_error() naming the file and the problem. */
NB_API nb_status nb_st_open(nb_safetensors **out, const char *path);
NB_API void nb_st_close(nb_safetensors *f);
NB_API int nb_st_count(const nb_safetensors *f);
NB_API const char *nb_st_name(const nb_safetensors *f, int i);
/* A view of tensor `name` (F32 or F64) into the file's buffer, valid until nb_st_close.
 * NB_ERR_ARG when absent, NB_ERR_DTYPE for other dtypes (the message names the dtype). */
NB_API nb_status nb_st_get(const nb_safetensors *f, const char *name, nb_tensor *t);
/* A "__metadata__" value, or NULL. */
NB_API const char *nb_st_meta(const nb_safetensors *f, const char *key);

/* Writes n tensors (any strides) and nmeta key/value strings atomically: a temporary file in
 * the same directory, fsync, rename. On failure (e.g. a full disk) the old file is untouched. */
NB_API nb_status nb_st_save(const char *path, int n, const char *const *names,
                            const nb_tensor *const *tensors, int nmeta,
                            const char *const *keys, const char *const *values);

/* Every parameter of ps, under its name. */
NB_API nb_status nb_params_save(nb_params *ps, const char *path, int nmeta,
                                const char *const *keys, const char *const *values);
/* Fills every parameter of ps from an opened file: each must be present with its dtype and shape
 * (the first mismatch is reported precisely). Tensors in the file that ps lacks are ignored. */
NB_API nb_status nb_params_load_from(nb_params *ps, const nb_safetensors *f);
NB_API nb_status nb_params_load(nb_params *ps, const char *path);

/* ---- data ---------------------------------------------------------------------------------- */

/* Images as bytes (C = 1, H × W each) with optional labels, from MNIST-style IDX files. */
typedef struct nb_dataset {
    int64_t n;
    int channels, rows, cols;
    uint8_t *images; /* n·channels·rows·cols bytes, row-major */
    uint8_t *labels; /* n bytes, or NULL */
    int nclasses;    /* max label + 1, 0 without labels */
    int owned;       /* images/labels are freed by nb_dataset_free */
} nb_dataset;

/* Loads <dir>/<split>-images-idx3-ubyte[.gz] and <dir>/<split>-labels-idx1-ubyte[.gz] (labels
 * optional: a missing labels file leaves labels NULL). split is e.g. "train" or "t10k". */
NB_API nb_status nb_dataset_load(nb_dataset *ds, const char *dir, const char *split);
/* One IDX file, .gz or raw: magic, type u8, dims and size checked. */
NB_API nb_status nb_idx_read(const char *path, int expect_ndim, int64_t dims[3], uint8_t **data);
NB_API void nb_dataset_free(nb_dataset *ds);
/* Examples [start, start + n) as a view (no copy; valid while src lives). */
NB_API nb_dataset nb_dataset_view(const nb_dataset *src, int64_t start, int64_t n);
/* Permutes images and labels in place (seeded); split into views afterwards for train/validation. */
NB_API void nb_dataset_shuffle(nb_dataset *ds, nb_rng *rng);

typedef enum nb_binarize {
    NB_BIN_NONE,      /* pixels / 255 */
    NB_BIN_THRESHOLD, /* pixel > 127 ? 1 : 0 (static) */
    NB_BIN_DYNAMIC,   /* Bernoulli(pixel / 255), drawn afresh each call */
} nb_binarize;

/* Writes examples idx[0..count) into x (count, C·H·W) or (count, C, H, W), f32 or f64,
 * contiguous, converting from bytes on the fly. rng is used by NB_BIN_DYNAMIC only. A tensor of
 * another size or an index out of range is refused (NB_ERR_SHAPE, NB_ERR_ARG) before anything
 * is written. */
NB_API nb_status nb_dataset_images(const nb_dataset *ds, const int64_t *idx, int64_t count,
                                   nb_tensor *x, nb_binarize bin, nb_rng *rng);
/* One-hot labels into y (count, K): K may exceed the data's classes (a model's class count); a
 * label >= K is refused. */
NB_API nb_status nb_dataset_onehot(const nb_dataset *ds, const int64_t *idx, int64_t count,
                                   nb_tensor *y);

/* Minibatches over a dataset: a seeded permutation per epoch (the same for a given seed and
 * epoch, whatever happened before), the last partial batch kept. */
typedef struct nb_batcher {
    const nb_dataset *ds;
    int64_t *order, batch, pos;
    uint64_t seed;
    int shuffle;
} nb_batcher;

NB_API nb_status nb_batcher_init(nb_batcher *b, const nb_dataset *ds, int64_t batch, int shuffle,
                                 uint64_t seed);
NB_API void nb_batcher_epoch(nb_batcher *b, int64_t epoch);
/* The next batch's indices; returns its size, 0 at the end of the epoch. */
NB_API int64_t nb_batcher_next(nb_batcher *b, const int64_t **idx);
NB_API void nb_batcher_free(nb_batcher *b);

#ifdef __cplusplus
}
#endif
#endif
