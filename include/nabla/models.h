/* nabla/models.h — the autoencoder zoo: AE, denoising AE, VAE, conditional VAE, as MLP or conv
 * nets, on one small API, plus the training loop every app shares.
 *
 *   nb_model m;  nb_model_init(&m, &cfg, ps, &rng);
 *   nb_model_loss(tp, &m, &batch, &opts, &terms);    // terms.loss is what backward starts from
 *   nb_model_encode / nb_model_decode / nb_model_sample   // the building blocks
 *
 * Losses follow one convention (docs/loss-units.md): sum over pixels and latent dims, mean over
 * the batch, in nats per image, as pytorch/examples reports them.
 */
#ifndef NB_MODELS_H
#define NB_MODELS_H

#include <stdio.h>

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nb_model_kind { NB_AE, NB_DAE, NB_VAE, NB_CVAE } nb_model_kind;
typedef enum nb_arch { NB_ARCH_MLP, NB_ARCH_CONV } nb_arch;
typedef enum nb_act { NB_ACT_RELU, NB_ACT_TANH, NB_ACT_LEAKY_RELU, NB_ACT_ELU, NB_ACT_GELU,
                      NB_ACT_IDENTITY /* none: with no hidden layer, a linear AE */ } nb_act;

/* p(x|z): Bernoulli (BCE with logits); Gaussian with a fixed σ; Gaussian with a learned
 * log-variance, one shared scalar or one per pixel. For an AE the Bernoulli decoder trains with
 * BCE and the Gaussian ones with the squared error. Gaussian means are sigmoid(out). */
typedef enum nb_decoder {
    NB_DEC_BERNOULLI,
    NB_DEC_GAUSSIAN,
    NB_DEC_GAUSSIAN_SHARED,
    NB_DEC_GAUSSIAN_PIXEL,
    /* Gaussian whose log σ²(z) is a second output of the decoder, a head beside the mean's last
     * layer (log σ² = W₃ᵀh + b₃). Its decoder output holds both, along dim 1: the mean's
     * pre-activation (C channels or C·H·W values), then log σ² (as many). */
    NB_DEC_GAUSSIAN_HEAD,
} nb_decoder;

/* The decoder mean from its last layer: sigmoid (pixels in [0, 1]) or the layer itself, for a
 * linear AE whose optimum is PCA's subspace. Bernoulli decoders always read logits. */
typedef enum nb_output { NB_OUT_SIGMOID, NB_OUT_IDENTITY } nb_output;

enum { NB_MAX_HIDDEN = 4 };

typedef struct nb_model_cfg {
    nb_model_kind kind;
    nb_arch arch;
    int channels, height, width; /* from the data */
    int nclasses;                /* CVAE: the one-hot width */
    int latent;
    int nhidden, hidden[NB_MAX_HIDDEN]; /* MLP hidden sizes, encoder order; the decoder mirrors */
    int conv1, conv2;            /* conv channels (k4 s2 p1 each) */
    nb_act act;
    nb_decoder decoder;
    double sigma;                /* NB_DEC_GAUSSIAN: the fixed standard deviation */
    double logvar_min, logvar_max; /* learned log-variance clamp; off when min >= max */
    double init_std;             /* > 0: every parameter ~ N(0, init_std) (AEVB); 0: PyTorch's */
    nb_output output;            /* the decoder mean's activation (Gaussian decoders) */
} nb_model_cfg;

/* The pytorch/examples VAE: MLP 784-400-20, ReLU, Bernoulli decoder (shape set by the caller). */
NB_API nb_model_cfg nb_model_defaults(void);

/* A stack of Linear layers with an activation between them, and after the last one too when
 * act_last (an encoder body that heads follow). */
typedef struct nb_mlp {
    nb_linear_layer layer[NB_MAX_HIDDEN + 1];
    int n, act_last;
    nb_act act;
} nb_mlp;

/* sizes[0] → sizes[1] → ... → sizes[n]; parameters "<name>.<i>.weight", "<name>.<i>.bias". */
NB_API nb_status nb_mlp_init(nb_mlp *m, nb_params *ps, const char *name, int n, const int *sizes,
                             nb_act act, int act_last, nb_rng *rng);
NB_API nb_tensor *nb_mlp_fwd(nb_tape *tp, const nb_mlp *m, nb_tensor *x);
NB_API nb_tensor *nb_act_fwd(nb_tape *tp, nb_act act, nb_tensor *x);

typedef struct nb_model {
    nb_model_cfg cfg;
    nb_params *ps;
    /* encoder: body then heads (mu and logvar for VAEs, code for AEs) */
    nb_mlp enc;                   /* MLP body, or the Linear after the conv body */
    nb_conv_layer enc_c1, enc_c2; /* conv body */
    nb_linear_layer head_mu, head_logvar;
    /* decoder */
    nb_mlp dec;                   /* MLP body (ends in the output layer), or Linear before deconvs */
    nb_conv_layer dec_c1, dec_c2;
    nb_tensor *dec_logvar;        /* learned log-variance, or NULL */
    nb_linear_layer dec_lv_head;  /* NB_DEC_GAUSSIAN_HEAD, MLP: log σ²(z) from the last hidden layer */
    nb_conv_layer dec_lv_conv;    /* NB_DEC_GAUSSIAN_HEAD, conv: the same as a transposed convolution */
    int64_t in_dim;               /* C·H·W */
    int h2, w2;                   /* conv: spatial size after the encoder body */
} nb_model;

/* Registers and initialises every parameter in ps (PyTorch initialisers). Errors: nb_last_error. */
NB_API nb_status nb_model_init(nb_model *m, const nb_model_cfg *cfg, nb_params *ps, nb_rng *rng);

/* Starts a learned decoder log-variance at the data's: log of each pixel's variance over the
 * images of ds (per pixel; and the head's bias, its weights zeroed) or of their mean (shared),
 * floored at NB_LOGVAR_INIT_FLOOR (or the clamp's minimum) and clamped like the model's. From
 * 0 (σ = 1), Adam at lr 1e-3 moves about 0.001 a step and would need thousands of steps to reach
 * the optimum (σ² = the squared error per pixel, near e^-3.4 on Fashion-MNIST); from the data's
 * variance it has about one nat to go. Does nothing for other decoders. */
#define NB_LOGVAR_INIT_FLOOR (-6.907755278982137) /* log 1e-3: near-constant border pixels */
NB_API nb_status nb_model_init_logvar(nb_model *m, const nb_dataset *ds);

/* The input shape the model takes for a batch of b: (b, C·H·W) for MLPs, (b, C, H, W) for conv. */
NB_API int nb_model_input_shape(const nb_model *m, int64_t b, int64_t shape[NB_MAX_DIMS]);

/* Examples idx[0..n) of ds as the model takes them, on tp: *x in the input shape, *y the one-hot
 * labels for a CVAE (else NULL). bin and rng as for nb_dataset_images. */
NB_API nb_status nb_model_batch(nb_tape *tp, const nb_model *m, const nb_dataset *ds,
                                const int64_t *idx, int64_t n, nb_binarize bin, nb_rng *rng,
                                nb_tensor **x, nb_tensor **y);

/* q(z|x): mu and logvar (B, d); for AEs the code in *mu and *logvar = NULL. y is the one-hot
 * label (B, nclasses) for a CVAE, else NULL. x must have the model's input shape
 * (nb_model_input_shape). Returns the tape's status (outputs NULL on failure). */
NB_API nb_status nb_model_encode(nb_tape *tp, const nb_model *m, nb_tensor *x, nb_tensor *y,
                                 nb_tensor **mu, nb_tensor **logvar);
/* The decoder's raw output for codes z (B, d), in the input's shape: logits for Bernoulli,
 * pre-sigmoid means for Gaussian. */
NB_API nb_tensor *nb_model_decode(nb_tape *tp, const nb_model *m, nb_tensor *z, nb_tensor *y);
/* The expected image under p(x|z): sigmoid of the decoder output. */
NB_API nb_tensor *nb_model_mean(nb_tape *tp, const nb_model *m, nb_tensor *out);
/* (With NB_OUT_IDENTITY the mean is the output itself; with NB_DEC_GAUSSIAN_HEAD, of its first
 * half. The log-variance a decoder output implies, (B, 1) broadcast or in the image's shape:) */
NB_API nb_tensor *nb_model_logvar(nb_tape *tp, const nb_model *m, nb_tensor *out);
/* -log p(x|z) per example (B) from the decoder output (AE: BCE or squared error). */
NB_API nb_tensor *nb_model_nll(nb_tape *tp, const nb_model *m, nb_tensor *out, nb_tensor *x);

/* One minibatch: the model's input (corrupted for a DAE), the target it reconstructs, labels. */
typedef struct nb_batch {
    nb_tensor *input, *target, *y;
} nb_batch;

typedef struct nb_loss_opts {
    double beta;        /* KL weight (1: the ELBO) */
    double free_bits;   /* > 0: each latent dim's batch-mean KL counts as at least this */
    nb_rng *rng;        /* draws ε for the reparameterisation */
    nb_tensor *eps;     /* or a fixed ε (B, d), e.g. for gradient checks */
} nb_loss_opts;

typedef struct nb_loss_terms {
    nb_tensor *loss;            /* scalar: recon + β·KL (with free bits), mean over the batch */
    nb_tensor *recon, *kl;      /* per example (B): -log p(x|z) and KL(q(z|x) ‖ p(z)), nats */
    nb_tensor *mu, *logvar, *z; /* the posterior and the sample used */
    nb_tensor *out;             /* decoder output */
} nb_loss_terms;

/* The model's training loss on a batch. Returns the tape's status. */
NB_API nb_status nb_model_loss(nb_tape *tp, const nb_model *m, const nb_batch *b,
                               const nb_loss_opts *o, nb_loss_terms *t);
/* n images decoded from z ~ N(0, I) (labels y for a CVAE), as expected images. */
NB_API nb_tensor *nb_model_sample(nb_tape *tp, const nb_model *m, int64_t n, nb_tensor *y,
                                  nb_rng *rng);
NB_API int nb_model_is_vae(const nb_model *m);

/* ---- corruptions (denoising) --------------------------------------------------------------- */

typedef enum nb_corrupt_kind {
    NB_CORRUPT_GAUSSIAN,   /* x + σ·ε, clipped to [0, 1]; param σ */
    NB_CORRUPT_DROPOUT,    /* each pixel zeroed with probability p */
    NB_CORRUPT_BLUR,       /* Gaussian blur of standard deviation σ (pixels) */
    NB_CORRUPT_BLOCK,      /* one k×k square zeroed at a random place; param k */
    NB_CORRUPT_SALT_PEPPER,/* each pixel set to 0 or 1 with probability p */
} nb_corrupt_kind;

enum { NB_MAX_CORRUPT = 8 };

typedef struct nb_corruption {
    int n;
    nb_corrupt_kind kind[NB_MAX_CORRUPT];
    double param[NB_MAX_CORRUPT];
} nb_corruption;

/* Parses "gaussian:0.3,dropout:0.5,blur:4,block:16,saltpepper:0.1" (applied in that order). */
NB_API nb_status nb_corruption_parse(nb_corruption *c, const char *spec);
NB_API void nb_corruption_str(const nb_corruption *c, char *buf, size_t size);
/* A corrupted copy of x (B, C·H·W or B, C, H, W; images of channels × height × width), drawn
 * afresh from rng, as a constant on tp. */
NB_API nb_tensor *nb_corrupt(nb_tape *tp, const nb_corruption *c, nb_tensor *x, int channels,
                             int height, int width, nb_rng *rng);

/* ---- evaluation ---------------------------------------------------------------------------- */

typedef struct nb_eval {
    int64_t n;            /* images */
    double elbo_loss;     /* -ELBO (recon + KL), nats per image */
    double recon, kl;     /* nats per image */
    double mse;           /* squared error per image of the mean reconstruction */
    double bits_per_dim;  /* -ELBO / (D ln 2) */
    int active_units;     /* dims with Cov_x(E[z_d | x]) > 0.01 */
    int latent;
    double kl_dim[256];   /* mean KL per latent dim (first 256) */
} nb_eval;

/* Evaluates on every image of ds (no binarisation unless bin says). A model trained to denoise
 * is judged as it was trained: on inputs corrupted by `corrupt` (drawn from seed), against the
 * clean images; NULL or no corruption feeds the clean images. */
NB_API nb_status nb_model_evaluate(const nb_model *m, const nb_dataset *ds, int64_t batch,
                                   nb_binarize bin, const nb_corruption *corrupt, uint64_t seed,
                                   nb_eval *e);
/* Importance-sampled log p(x) with k samples from q(z|x) (Burda et al.), per image mean and its
 * standard error over images, in nats; logsumexp in f64. VAEs only. */
NB_API nb_status nb_model_log_likelihood(const nb_model *m, const nb_dataset *ds, int64_t count,
                                         int k, nb_binarize bin, uint64_t seed, double *mean,
                                         double *stderr_);

/* ---- training ------------------------------------------------------------------------------ */

/* Everything a run is made of. The apps resolve flags, presets and --config files into one of
 * these; it is written to <out>/config.json and into every checkpoint. */
typedef struct nb_train_cfg {
    nb_model_cfg model;
    nb_optim_cfg optim;
    nb_lr_schedule schedule;
    char data[512], out[512];
    nb_binarize binarize;
    int64_t train_size, test_size; /* 0: all */
    int64_t batch, eval_batch;
    int epochs, threads;
    uint64_t seed;
    double beta, free_bits;
    int kl_warmup;                 /* epochs of linear warm-up of beta, per step */
    nb_corruption corrupt;         /* the input is corrupted, the target clean (a DAE must) */
    int progress;                  /* for the apps' step lines: -1 auto (a terminal), 0 off, 1 on */
    char preset[64];
} nb_train_cfg;

/* The pytorch/examples set-up on Fashion-MNIST. */
NB_API nb_train_cfg nb_train_defaults(void);
/* Applies a preset: "pytorch-examples", "aevb", "conv", "dae", "cvae". */
NB_API nb_status nb_train_preset(nb_train_cfg *c, const char *name);
/* Sets one key as the command line and config files spell it ("latent", "hidden" = "392,196",
 * "optimizer", "lr", "kl-warmup", ...); a bad key or value is an error naming both. */
NB_API nb_status nb_train_set(nb_train_cfg *c, const char *key, const char *value);
/* Reads a JSON object of keys (as nb_train_set takes them) to values (strings or numbers). */
NB_API nb_status nb_train_load_config(nb_train_cfg *c, const char *path);
/* The resolved configuration as a JSON object (malloc'd; free it). */
NB_API char *nb_train_cfg_json(const nb_train_cfg *c);
/* Every key nb_train_set accepts, with a one-line description each, for --help. */
NB_API void nb_train_keys_help(FILE *f);
/* Key i of that table (NULL past its end), with its one-line help and its default as typed into
 * def (size bytes), so a program can list only the keys it uses. */
NB_API const char *nb_train_key_info(int i, const char **help, char *def, size_t size);

/* What a run reports after each epoch. */
typedef struct nb_epoch_log {
    int epoch;                 /* 1-based, completed */
    int64_t step;              /* optimizer steps so far */
    double beta, lr;
    double train_loss, train_recon, train_kl; /* means over the epoch, nats per image */
    nb_eval test;
    double seconds, images_per_s;
} nb_epoch_log;

/* What a run reports after each optimizer step. */
typedef struct nb_step_log {
    int epoch, epochs;         /* the epoch under way (1-based) and the run's last */
    int64_t batch, batches;    /* batches of this epoch done, and in all */
    int64_t step;              /* optimizer steps so far */
    double loss;               /* this step's loss */
    double mean_loss;          /* the epoch's mean so far, nats per image */
    double images_per_s, eta_s; /* the epoch's speed, and the time left in it */
} nb_step_log;

/* Where a run's progress goes: the library never prints. Every member may be NULL. */
typedef struct nb_train_hooks {
    void (*on_step)(const nb_step_log *, void *ctx);   /* after every step */
    void (*on_epoch)(const nb_epoch_log *, void *ctx); /* after each epoch's checkpoint */
    void *ctx;
} nb_train_hooks;

typedef struct nb_trainer nb_trainer;

/* Loads the data, builds the model and optimizer, resumes from <path> when resume is set.
 * Returns NULL with nb_last_error() set on failure. */
NB_API nb_trainer *nb_trainer_new(const nb_train_cfg *cfg, const char *resume);
NB_API void nb_trainer_free(nb_trainer *t);
/* Trains the remaining epochs, writing <out>/metrics.csv and an atomic checkpoint after every
 * epoch, and reporting progress through hooks (may be NULL). Stops with NB_ERR_NAN and a
 * message naming the step and the op or parameter when a loss or gradient turns non-finite; the
 * last good checkpoint stays. */
NB_API nb_status nb_trainer_run(nb_trainer *t, const nb_train_hooks *hooks);
NB_API const nb_model *nb_trainer_model(const nb_trainer *t);
NB_API const nb_dataset *nb_trainer_data(const nb_trainer *t, int test);
NB_API const nb_train_cfg *nb_trainer_cfg(const nb_trainer *t);

/* Checkpoints: parameters, optimizer state, epoch, step and the configuration in one
 * safetensors file. Every random draw of a run is keyed by (seed, step), so these are its
 * whole state: a resumed run continues bit for bit. */
NB_API nb_status nb_checkpoint_save(const char *path, nb_params *ps, nb_optim *o,
                                    const nb_train_cfg *cfg, int epoch, int64_t step);
/* Loads a checkpoint's configuration and progress (for apps that rebuild the model from it). */
NB_API nb_status nb_checkpoint_config(const char *path, nb_train_cfg *cfg, int *epoch, int64_t *step);
/* Loads parameters (and the optimizer state when o is not NULL). */
NB_API nb_status nb_checkpoint_load(const char *path, nb_params *ps, nb_optim *o);

#ifdef __cplusplus
}
#endif
#endif
