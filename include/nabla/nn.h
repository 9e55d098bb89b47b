/** @file
 * nabla/nn.h — layers, activations, losses, optimizers, initialisers, parameter files, data.
 *
 * Everything here follows PyTorch's semantics, so that a PyTorch model ports line by line:
 * weight layouts ([out, in] for Linear, [out, in, kh, kw] for Conv2d, [in, out, kh, kw] for
 * ConvTranspose2d), NCHW images, default initialisers, and optimizer update formulas.
 *
 * Layers are small caller-allocated structs holding parameter pointers; `*_init` registers the
 * parameters under `"<name>.weight"` and `"<name>.bias"` (PyTorch's state_dict names) and
 * initialises them as PyTorch does; `*_fwd` applies the layer on a tape.
 *
 * Functions on a tape follow nabla/autograd.h: they return arena tensors, or NULL with the
 * tape's sticky error. The others return an nb_status, with the message in nb_last_error().
 */
#ifndef NB_NN_H
#define NB_NN_H

#include "autograd.h"
#include "op.h"

#ifdef __cplusplus
extern "C" {
#endif

/** nn's layers and losses as ops (nabla/op.h), *n of them: what a coverage test walks.
 * @return a static array (n may be NULL); never free it. */
NB_API const nb_op_def *const *nb_nn_ops(int *n);

/* ---- layers -------------------------------------------------------------------------------- */

/** y = x·wᵀ + b. x (..., in), w (out, in), b (out) or NULL; y (..., out). One fused op.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error
 *         (NB_ERR_SHAPE when the sizes do not fit). */
NB_API nb_tensor *nb_linear(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b);
/** max(nb_linear(x, w, b), 0) as one op: the ReLU runs in place on the product (NaN passes
 * through, as in nb_relu), with no tensor of its own, and the backward masks the output
 * gradient once for both products. The same shapes and errors as nb_linear.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_linear_relu(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b);

/** A Linear layer: its parameters, which its nb_params store owns, and its sizes. */
typedef struct nb_linear_layer {
    /** @{ */
    nb_tensor *weight, *bias; /**< the weight, and the bias (NULL without one) */
    /** @} */
    /** @{ */
    int64_t in, out;          /**< the input and output features */
    /** @} */
} nb_linear_layer;

/** Registers `"<name>.weight"` (out, in) and, when bias, `"<name>.bias"` (out) in ps and
 * initialises them as PyTorch does, drawing from rng.
 * @return NB_OK, or NB_ERR_ARG (NULL store or name, sizes outside 1 to 2^24, a name already
 *         taken, no memory) with nb_last_error() set. */
NB_API nb_status nb_linear_init(nb_linear_layer *l, nb_params *ps, const char *name, int64_t in,
                                int64_t out, int bias, nb_rng *rng);
/** Applies the layer: nb_linear(tp, x, l->weight, l->bias).
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_linear_fwd(nb_tape *tp, const nb_linear_layer *l, nb_tensor *x);
/** The layer followed by a ReLU, fused: nb_linear_relu(tp, x, l->weight, l->bias).
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_linear_relu_fwd(nb_tape *tp, const nb_linear_layer *l, nb_tensor *x);

/** Convolution geometry, per spatial dim (h, w). out_pad is for transposed convolutions. */
typedef struct nb_conv_cfg {
    /** @{ */
    int stride[2], pad[2], out_pad[2], dilation[2]; /**< each for (h, w); dilation 1 is none */
    /** @} */
} nb_conv_cfg;

/** The common square case: stride s, padding p, no output padding, no dilation. */
NB_API nb_conv_cfg nb_conv(int stride, int pad);

/** x (N, C, H, W), w (O, C, kh, kw), b (O) or NULL → (N, O, H', W'), PyTorch's Conv2d.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error
 *         (NB_ERR_SHAPE for a bad geometry, NB_ERR_BACKEND when oneDNN refuses). */
NB_API nb_tensor *nb_conv2d(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_conv_cfg c);
/** x (N, C, H, W), w (C, O, kh, kw), b (O) or NULL → (N, O, H', W') with
 * H' = (H-1)·stride - 2·pad + dilation·(kh-1) + out_pad + 1, PyTorch's ConvTranspose2d.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_conv_transpose2d(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                                      nb_conv_cfg c);
/** @{ */
/** The output size of one spatial dim, or -1 when the geometry is invalid (of a convolution,
 * and of a transposed one). */
NB_API int64_t nb_conv_out_size(int64_t in, int k, int stride, int pad, int dilation);
NB_API int64_t nb_conv_transpose_out_size(int64_t in, int k, int stride, int pad, int out_pad,
                                          int dilation);
/** @} */

/** A Conv2d or ConvTranspose2d layer: its parameters, which its nb_params store owns, and its
 * geometry. */
typedef struct nb_conv_layer {
    /** @{ */
    nb_tensor *weight, *bias; /**< the weight, and the bias (NULL without one) */
    /** @} */
    nb_conv_cfg cfg;          /**< the geometry */
    int transposed;           /**< 1 for ConvTranspose2d */
} nb_conv_layer;

/** @{ */
/** Registers `"<name>.weight"` (out_ch, in_ch, k, k), or (in_ch, out_ch, k, k) for the
 * transposed layer, and `"<name>.bias"` (out_ch) when bias, initialised as PyTorch does.
 * @return NB_OK, or NB_ERR_ARG (NULL store or name, channels outside 1 to 65536, k outside 1 to
 *         1024, a name taken, no memory) with nb_last_error() set. */
NB_API nb_status nb_conv2d_init(nb_conv_layer *l, nb_params *ps, const char *name, int in_ch,
                                int out_ch, int k, nb_conv_cfg cfg, int bias, nb_rng *rng);
NB_API nb_status nb_conv_transpose2d_init(nb_conv_layer *l, nb_params *ps, const char *name,
                                          int in_ch, int out_ch, int k, nb_conv_cfg cfg,
                                          int bias, nb_rng *rng);
/** @} */
/** Applies the layer (nb_conv2d or nb_conv_transpose2d).
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_conv_fwd(nb_tape *tp, const nb_conv_layer *l, nb_tensor *x);
/** max(nb_conv2d(x, w, b, c), 0) as one op: the ReLU runs inside oneDNN's convolution (a
 * post-op), with no pass and no tensor of its own. The same shapes and errors as nb_conv2d.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_conv2d_relu(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b, nb_conv_cfg c);
/** max(nb_conv_transpose2d(x, w, b, c), 0) as one op, as nb_conv2d_relu.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_conv_transpose2d_relu(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                                           nb_conv_cfg c);
/** The layer followed by a ReLU, fused (nb_conv2d_relu or nb_conv_transpose2d_relu).
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_conv_relu_fwd(nb_tape *tp, const nb_conv_layer *l, nb_tensor *x);

/* ---- losses -------------------------------------------------------------------------------- */
/** @file
 * @par Losses
 * One convention for every loss (see docs/loss-units.md): the per-element terms are summed over
 * every dim but the first (the batch), then NB_REDUCE_SUM sums and NB_REDUCE_MEAN averages
 * over the batch, giving a scalar; NB_REDUCE_NONE keeps one value per example, shape (B). */

/** How a loss reduces over the batch (see Losses, above). */
typedef enum nb_reduce {
    NB_REDUCE_MEAN, /**< the mean over the batch, a scalar */
    NB_REDUCE_SUM,  /**< the sum over the batch, a scalar */
    NB_REDUCE_NONE  /**< one value per example, (B) */
} nb_reduce;

/** -[t·log σ(l) + (1-t)·log(1-σ(l))], computed stably as softplus(l) - t·l.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_bce_logits(nb_tape *tp, nb_tensor *logits, nb_tensor *target, nb_reduce r);
/** (pred - target)²
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_mse(nb_tape *tp, nb_tensor *pred, nb_tensor *target, nb_reduce r);
/** -log N(x; mean, exp(logvar)) = ½(log 2π + logvar + (x-mean)²·exp(-logvar)), the constant
 * included. logvar broadcasts: a scalar (shared), per element, or anything in between.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_gaussian_nll(nb_tape *tp, nb_tensor *x, nb_tensor *mean, nb_tensor *logvar,
                                  nb_reduce r);
/** KL(N(mu, exp(logvar)) ‖ N(0, I)) = -½(1 + logvar - mu² - exp(logvar)), analytic.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_kl_normal(nb_tape *tp, nb_tensor *mu, nb_tensor *logvar, nb_reduce r);

/** log N(x; mean, exp(logvar)) elementwise, no reduction, broadcasting (the constant included):
 * a building block for likelihoods, priors and importance weights. mean NULL means 0, logvar
 * NULL means 0 (unit variance).
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_normal_log_prob(nb_tape *tp, nb_tensor *x, nb_tensor *mean, nb_tensor *logvar);

/** Σ_ij Σ_s c_s / (c_s + ‖a_i − b_j‖²): the inverse multiquadratic kernel summed over every pair
 * of rows of a (N, d) and b (M, d), at the S constants c (S) (e.g.\ c_s = 2·d·σ_s² over a few
 * scales): the MMD's kernel sums (WAE, InfoVAE) as one op, with gradients for a, b and c. a and
 * b may be one tensor (the within-sample sums; their diagonal terms, Σ_s 1 each, included).
 * Computed in f64; when a gradient will be asked for, the op keeps N·M doubles on the tape (the
 * kernel's derivative at each pair), so that backward needs no division.
 * @return a scalar arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's
 *         error (shapes other than these). */
NB_API nb_tensor *nb_imq_kernel_sum(nb_tape *tp, nb_tensor *a, nb_tensor *b, nb_tensor *c);

/** For each row z_i of z (N, d), the index k of the nearest row of codebook (K, d) by squared
 * Euclidean distance, the lowest k on ties (a NaN distance is taken as nearest, as by nb_argmin):
 * a VQ-VAE's code lookup. The N × K distances are made and scanned a block of rows at a time and
 * never stored. The indices (N), in z's dtype, carry no gradient.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error
 *         (shapes other than these, or K past 2^24 in f32). */
NB_API nb_tensor *nb_nearest_row(nb_tape *tp, nb_tensor *z, nb_tensor *codebook);

/* ---- initialisers -------------------------------------------------------------------------- */
/** @file
 * @par Initialisers
 * The nb_init_* functions fill a weight in place (contiguous; nb_init_constant takes any
 * strides), drawing from rng; none of them allocates or fails. */

/** PyTorch's fan-in and fan-out of a weight: dims 1 and 0 times the receptive field. */
NB_API void nb_fan(const nb_tensor *w, int64_t *fan_in, int64_t *fan_out);
/** U(lo, hi). */
NB_API void nb_init_uniform(nb_tensor *t, nb_rng *rng, double lo, double hi);
/** N(mean, std²). */
NB_API void nb_init_normal(nb_tensor *t, nb_rng *rng, double mean, double std);
/** Every element v (any strides). */
NB_API void nb_init_constant(nb_tensor *t, double v);
/** U(±gain·√(3/fan_in)), gain = √(2/(1+a²)): a = √5 is PyTorch's default for Linear and Conv. */
NB_API void nb_init_kaiming_uniform(nb_tensor *w, nb_rng *rng, double a);
/** N(0, gain²/fan_in), gain = √(2/(1+a²)). */
NB_API void nb_init_kaiming_normal(nb_tensor *w, nb_rng *rng, double a);
/** U(±gain·√(6/(fan_in + fan_out))), Glorot's. */
NB_API void nb_init_xavier_uniform(nb_tensor *w, nb_rng *rng, double gain);
/** N(0, gain²·2/(fan_in + fan_out)), Glorot's. */
NB_API void nb_init_xavier_normal(nb_tensor *w, nb_rng *rng, double gain);

/* ---- optimizers ---------------------------------------------------------------------------- */

/** The update rule, with PyTorch's formulas. */
typedef enum nb_optim_kind {
    NB_SGD,    /**< SGD, with optional momentum, dampening and Nesterov */
    NB_ADAM,   /**< Adam */
    NB_ADAMW,  /**< AdamW: Adam with decoupled weight decay */
    NB_ADAGRAD /**< Adagrad */
} nb_optim_kind;

/** An optimizer's settings; start from nb_optim_defaults. */
typedef struct nb_optim_cfg {
    nb_optim_kind kind;   /**< the update rule */
    double lr;            /**< the learning rate */
    double weight_decay;  /**< L2 added to the gradient; AdamW: decoupled decay */
    double momentum;      /**< SGD */
    double dampening;     /**< SGD */
    int nesterov;         /**< SGD */
    /** @{ */
    double beta1, beta2;  /**< Adam, AdamW */
    /** @} */
    double eps;           /**< Adam, AdamW, Adagrad */
    double lr_decay;      /**< Adagrad */
    double initial_accumulator; /**< Adagrad */
    double clip_norm;     /**< > 0: scale gradients so their global L2 norm is at most this */
    /** 1: a step leaves the gradients marked zero by nb_params_clear_grad instead of writing
     * zeros, and the next backward writes them instead of adding (one pass less over them and
     * no reads of zeros); see nb_params_clear_grad for what code that reads p->grad must do.
     * 0 (the default): a step writes zeros into them. */
    int clear_grad;
} nb_optim_cfg;

/** PyTorch's defaults for each optimizer, at learning rate lr. */
NB_API nb_optim_cfg nb_optim_defaults(nb_optim_kind kind, double lr);

/** An optimizer: its settings and per-parameter state. Opaque; made by nb_optim_new, released
 * by nb_optim_free. */
typedef struct nb_optim nb_optim;

/** An optimizer over every parameter of ps, registered before this call.
 * @return a new optimizer, owned by the caller (nb_optim_free; ps must outlive it), or NULL
 *         with nb_last_error() set (NB_ERR_ARG for a NULL store or a bad setting, NB_ERR_NOMEM). */
NB_API nb_optim *nb_optim_new(nb_params *ps, nb_optim_cfg cfg);
/** Frees the optimizer and its state (the store is untouched); NULL is ignored. */
NB_API void nb_optim_free(nb_optim *o);
/** Checks the gradients are finite (else NB_ERR_NAN naming the first bad parameter and index,
 * parameters untouched), clips, applies one update, zeroes the gradients (or marks them zero:
 * nb_optim_cfg::clear_grad). The update flushes subnormal values to zero (a moment decaying
 * under zero gradients reaches them; their arithmetic is slow), as PyTorch does after
 * torch.set_flush_denormal(True); the caller's floating-point mode is left as it was.
 * @return NB_OK; NB_ERR_NAN; NB_ERR_STATE when parameters were registered after nb_optim_new;
 *         NB_ERR_ARG for a NULL optimizer. The message is in nb_last_error(). */
NB_API nb_status nb_optim_step(nb_optim *o);
/** Sets the learning rate; NB_ERR_ARG (nb_last_error) unless lr is finite and >= 0. */
NB_API nb_status nb_optim_set_lr(nb_optim *o, double lr);
/** The current learning rate (0 for a NULL optimizer). */
NB_API double nb_optim_lr(const nb_optim *o);
/** Updates applied so far (0 for a NULL optimizer). */
NB_API int64_t nb_optim_steps(const nb_optim *o);
/** The L2 norm of all gradients before clipping, from the last step. */
NB_API double nb_optim_grad_norm(const nb_optim *o);
/** @file
 * @par Optimizer state
 * The optimizer state, for checkpoints: per-parameter moments as tensors over flat blocks laid
 * out like the parameters (state[k] has one tensor per parameter; NULL when unused), and the
 * step count. Restore by writing into the same tensors and calling nb_optim_set_steps. */
/** The number of moment blocks: 0, 1 or 2 (see Optimizer state, above). */
NB_API int nb_optim_state_count(const nb_optim *o);
/** Moment block k of parameter param, of the parameter's shape.
 * @return the optimizer's tensor (valid until nb_optim_free), or NULL when k or param is out of
 *         range. */
NB_API nb_tensor *nb_optim_state(nb_optim *o, int k, int param);
/** The name of moment block k: "momentum", "exp_avg", ...
 * @return a static string, or NULL when k is out of range. */
NB_API const char *nb_optim_state_name(const nb_optim *o, int k);
/** Sets the step count (Adam's bias correction counts from it); NB_ERR_ARG when negative. */
NB_API nb_status nb_optim_set_steps(nb_optim *o, int64_t steps);

/** Learning-rate schedules, evaluated per epoch (PyTorch's StepLR and ExponentialLR). */
typedef enum nb_lr_kind {
    NB_LR_CONSTANT,   /**< base_lr always */
    NB_LR_STEP,       /**< times gamma every step_size epochs */
    NB_LR_EXPONENTIAL /**< times gamma every epoch */
} nb_lr_kind;
/** A learning-rate schedule (nb_lr_at evaluates it). */
typedef struct nb_lr_schedule {
    nb_lr_kind kind; /**< the rule */
    double gamma;  /**< factor */
    int step_size; /**< NB_LR_STEP: epochs between factors */
} nb_lr_schedule;
/** The learning rate of the schedule at epoch (0-based), starting from base_lr. */
NB_API double nb_lr_at(nb_lr_schedule s, double base_lr, int epoch);

/* ---- parameter files (safetensors) --------------------------------------------------------- */
/** @file
 * @par Parameter files (safetensors)
 * The safetensors format: an 8-byte little-endian header length, a JSON header mapping each
 * name to {dtype, shape, data_offsets} plus optional "__metadata__" string pairs, then the
 * data. Files move to and from PyTorch (safetensors.torch.load_file / save_file). */

/** A safetensors file read into memory. Opaque; made by nb_st_open, released by nb_st_close,
 * which invalidates every name, view and metadata string taken from it. */
typedef struct nb_safetensors nb_safetensors;

/** Reads and validates a whole file (header JSON, dtypes, shapes, offsets within the data, no
 * overlap). On failure returns non-zero with nb_last_error() naming the file and the problem.
 * @note On success *out is the caller's: release it with nb_st_close. On failure *out is NULL. */
NB_API nb_status nb_st_open(nb_safetensors **out, const char *path);
/** Frees the file and everything taken from it; NULL is ignored. */
NB_API void nb_st_close(nb_safetensors *f);
/** The number of tensors in the file. */
NB_API int nb_st_count(const nb_safetensors *f);
/** The name of tensor i.
 * @return a string owned by f, valid until nb_st_close, or NULL when i is out of range. */
NB_API const char *nb_st_name(const nb_safetensors *f, int i);
/** A view of tensor `name` (F32 or F64) into the file's buffer, valid until nb_st_close.
 * NB_ERR_ARG when absent, NB_ERR_DTYPE for other dtypes (the message names the dtype). */
NB_API nb_status nb_st_get(const nb_safetensors *f, const char *name, nb_tensor *t);
/** A "__metadata__" value, or NULL.
 * @return a string owned by f, valid until nb_st_close. */
NB_API const char *nb_st_meta(const nb_safetensors *f, const char *key);

/** Writes n tensors (any strides) and nmeta key/value strings atomically: a temporary file in
 * the same directory, fsync, rename. On failure (e.g.\ a full disk) the old file is untouched.
 * @return NB_OK, or NB_ERR_ARG / NB_ERR_IO / NB_ERR_NOMEM with nb_last_error() naming the file. */
NB_API nb_status nb_st_save(const char *path, int n, const char *const *names,
                            const nb_tensor *const *tensors, int nmeta,
                            const char *const *keys, const char *const *values);

/** Every parameter of ps, under its name (nb_st_save's atomic write and errors). */
NB_API nb_status nb_params_save(nb_params *ps, const char *path, int nmeta,
                                const char *const *keys, const char *const *values);
/** Fills every parameter of ps from an opened file: each must be present with its dtype and shape
 * (the first mismatch is reported precisely). Tensors in the file that ps lacks are ignored.
 * @return NB_OK, or NB_ERR_FORMAT (missing), NB_ERR_DTYPE or NB_ERR_SHAPE with nb_last_error();
 *         everything is checked first, so a failed load changes no parameter. */
NB_API nb_status nb_params_load_from(nb_params *ps, const nb_safetensors *f);
/** nb_st_open, nb_params_load_from and nb_st_close in one call, with their errors. */
NB_API nb_status nb_params_load(nb_params *ps, const char *path);

/* ---- data ---------------------------------------------------------------------------------- */

/** Images as bytes (C = 1, H × W each) with optional labels, from MNIST-style IDX files. */
typedef struct nb_dataset {
    int64_t n;                /**< examples */
    /** @{ */
    int channels, rows, cols; /**< the shape of one image */
    /** @} */
    uint8_t *images; /**< n·channels·rows·cols bytes, row-major */
    uint8_t *labels; /**< n bytes, or NULL */
    int nclasses;    /**< max label + 1, 0 without labels */
    int owned;       /**< images/labels are freed by nb_dataset_free */
} nb_dataset;

/** Loads `<dir>/<split>-images-idx3-ubyte[.gz]` and `<dir>/<split>-labels-idx1-ubyte[.gz]` (labels
 * optional: a missing labels file leaves labels NULL). split is e.g.\ "train" or "t10k".
 * @return NB_OK, with *ds owning its bytes (release with nb_dataset_free); or NB_ERR_IO,
 *         NB_ERR_FORMAT, NB_ERR_NOMEM, NB_ERR_ARG with nb_last_error() naming the file, *ds
 *         zeroed. */
NB_API nb_status nb_dataset_load(nb_dataset *ds, const char *dir, const char *split);
/** One IDX file, .gz or raw: magic, type u8, dims and size checked.
 * @note On success *data is malloc'd and the caller's (free it); on failure it is NULL, with
 *       nb_last_error() naming the file. */
NB_API nb_status nb_idx_read(const char *path, int expect_ndim, int64_t dims[3], uint8_t **data);
/** Frees what an owning data set holds (a view frees nothing) and zeroes *ds. */
NB_API void nb_dataset_free(nb_dataset *ds);
/** Examples [start, start + n) as a view (no copy; valid while src lives). Out-of-range requests
 * are clamped to the examples that exist. */
NB_API nb_dataset nb_dataset_view(const nb_dataset *src, int64_t start, int64_t n);
/** Permutes images and labels in place (seeded); split into views afterwards for train/validation. */
NB_API void nb_dataset_shuffle(nb_dataset *ds, nb_rng *rng);

/** How pixel bytes become values. */
typedef enum nb_binarize {
    NB_BIN_NONE,      /**< pixels / 255 */
    NB_BIN_THRESHOLD, /**< pixel > 127 ? 1 : 0 (static) */
    NB_BIN_DYNAMIC,   /**< Bernoulli(pixel / 255), drawn afresh each call */
} nb_binarize;

/** Writes examples idx[0..count) into x (count, C·H·W) or (count, C, H, W), f32 or f64,
 * contiguous, converting from bytes on the fly. rng is used by NB_BIN_DYNAMIC only. A tensor of
 * another size or an index out of range is refused (NB_ERR_SHAPE, NB_ERR_ARG) before anything
 * is written. */
NB_API nb_status nb_dataset_images(const nb_dataset *ds, const int64_t *idx, int64_t count,
                                   nb_tensor *x, nb_binarize bin, nb_rng *rng);
/** One-hot labels into y (count, K): K may exceed the data's classes (a model's class count); a
 * label >= K is refused. Errors as for nb_dataset_images (NB_ERR_ARG also without labels). */
NB_API nb_status nb_dataset_onehot(const nb_dataset *ds, const int64_t *idx, int64_t count,
                                   nb_tensor *y);

/** Minibatches over a dataset: a seeded permutation per epoch (the same for a given seed and
 * epoch, whatever happened before), the last partial batch kept. */
typedef struct nb_batcher {
    const nb_dataset *ds;          /**< the data set, borrowed: it must outlive the batcher */
    /** @{ */
    int64_t *order, batch, pos;    /**< the epoch's order (owned), batch size, next index */
    /** @} */
    uint64_t seed;                 /**< the permutations' seed */
    int shuffle;                   /**< 0: examples in order */
} nb_batcher;

/** Sets up b over ds at epoch 0.
 * @return NB_OK, with b owning its order (release with nb_batcher_free); NB_ERR_ARG for a batch
 *         below 1, NB_ERR_NOMEM, with nb_last_error() set. */
NB_API nb_status nb_batcher_init(nb_batcher *b, const nb_dataset *ds, int64_t batch, int shuffle,
                                 uint64_t seed);
/** Starts epoch epoch: its permutation, from the first batch. */
NB_API void nb_batcher_epoch(nb_batcher *b, int64_t epoch);
/** The next batch's indices; returns its size, 0 at the end of the epoch.
 * @note *idx points into b's order: valid until the next nb_batcher_epoch or nb_batcher_free. */
NB_API int64_t nb_batcher_next(nb_batcher *b, const int64_t **idx);
/** Frees the order and zeroes *b; the data set is untouched. */
NB_API void nb_batcher_free(nb_batcher *b);

#ifdef __cplusplus
}
#endif
#endif
