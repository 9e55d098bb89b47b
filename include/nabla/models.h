/** @file
 * nabla/models.h — the autoencoder zoo: AE, denoising AE, VAE, conditional VAE, as MLP or conv
 * nets, on one small API, plus the training loop every app shares.
 *
 *     nb_model m;  nb_model_init(&m, &cfg, ps, &rng);
 *     nb_model_loss(tp, &m, &batch, &opts, &terms);    // terms.loss is what backward starts from
 *     nb_model_encode / nb_model_decode / nb_model_sample   // the building blocks
 *
 * Losses follow one convention (docs/loss-units.md): sum over pixels and latent dims, mean over
 * the batch, in nats per image, as pytorch/examples reports them.
 *
 * A model's parameters live in the nb_params store it was built in; the tensors the functions
 * on a tape return live in that tape's arena. Failures are reported as in nabla/nn.h.
 */
#ifndef NB_MODELS_H
#define NB_MODELS_H

#include <stdio.h>

#include "dist.h"
#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Which autoencoder. */
typedef enum nb_model_kind {
    NB_AE,  /**< autoencoder */
    NB_DAE, /**< denoising autoencoder: trained on corrupted inputs */
    NB_VAE, /**< variational autoencoder */
    NB_CVAE, /**< conditional VAE: encoder and decoder also see the one-hot label */
    NB_VQVAE, /**< vector-quantised AE: codes snapped to a learned codebook (models/zoo_vq.c) */
    NB_VAMP,  /**< VAE with the VampPrior, a mixture over learned pseudo-inputs (models/zoo_vamp.c) */
    NB_HVAE   /**< VAE with two stochastic layers, x → z1 → z2 (models/zoo_hvae.c) */
} nb_model_kind;
/** The networks' architecture. */
typedef enum nb_arch {
    NB_ARCH_MLP, /**< Linear layers */
    NB_ARCH_CONV /**< two stride-2 convolutions each way */
} nb_arch;
/** The activation between layers. */
typedef enum nb_act {
    NB_ACT_RELU,       /**< nb_relu */
    NB_ACT_TANH,       /**< nb_tanh */
    NB_ACT_LEAKY_RELU, /**< nb_leaky_relu, slope 0.01 */
    NB_ACT_ELU,        /**< nb_elu, alpha 1 */
    NB_ACT_GELU,       /**< nb_gelu */
    NB_ACT_IDENTITY    /**< none: with no hidden layer, a linear AE */
} nb_act;

/** p(x|z): Bernoulli (BCE with logits); Gaussian with a fixed σ; Gaussian with a learned
 * log-variance, one shared scalar or one per pixel. For an AE the Bernoulli decoder trains with
 * BCE and the Gaussian ones with the squared error. Gaussian means are sigmoid(out). */
typedef enum nb_decoder {
    NB_DEC_BERNOULLI,       /**< Bernoulli, BCE with logits */
    NB_DEC_GAUSSIAN,        /**< Gaussian with the fixed σ of nb_model_cfg::sigma */
    NB_DEC_GAUSSIAN_SHARED, /**< Gaussian with one learned log-variance */
    NB_DEC_GAUSSIAN_PIXEL,  /**< Gaussian with a learned log-variance per pixel */
    /** Gaussian whose log σ²(z) is a second output of the decoder, a head beside the mean's last
     * layer (log σ² = W₃ᵀh + b₃). Its decoder output holds both, along dim 1: the mean's
     * pre-activation (C channels or C·H·W values), then log σ² (as many). */
    NB_DEC_GAUSSIAN_HEAD,
} nb_decoder;

/** The decoder mean from its last layer. Bernoulli decoders always read logits. */
typedef enum nb_output {
    NB_OUT_SIGMOID, /**< sigmoid: pixels in [0, 1] */
    NB_OUT_IDENTITY /**< the layer itself, for a linear AE whose optimum is PCA's subspace */
} nb_output;

/** Limits of a model. */
enum {
    NB_MAX_HIDDEN = 4 /**< MLP hidden layers */
};

/** What to build; start from nb_model_defaults. */
typedef struct nb_model_cfg {
    nb_model_kind kind;          /**< which autoencoder */
    nb_arch arch;                /**< MLP or conv */
    /** @{ */
    int channels, height, width; /**< from the data */
    /** @} */
    int nclasses;                /**< CVAE: the one-hot width */
    int latent;                  /**< latent dims */
    /** @{ */
    int nhidden, hidden[NB_MAX_HIDDEN]; /**< MLP hidden sizes, encoder order; the decoder mirrors */
    /** @} */
    /** @{ */
    int conv1, conv2;            /**< conv channels (k4 s2 p1 each) */
    /** @} */
    nb_act act;                  /**< the activation */
    nb_decoder decoder;          /**< p(x|z) */
    double sigma;                /**< NB_DEC_GAUSSIAN: the fixed standard deviation */
    /** @{ */
    double logvar_min, logvar_max; /**< learned log-variance clamp; off when min >= max */
    /** @} */
    double init_std;             /**< > 0: every parameter ~ N(0, init_std) (AEVB); 0: PyTorch's */
    nb_output output;            /**< the decoder mean's activation (Gaussian decoders) */
    /** @{ */
    int codebook, code_dim, codes; /**< VQ-VAE: K codes of Dc values; L positions (MLP; conv: H/4·W/4) */
    /** @} */
    double commitment;           /**< VQ-VAE: β_c, the weight of the commitment loss */
    int pseudo_inputs;           /**< VampPrior: Kp, the mixture's components */
    /** @{ */
    int hvae_hidden1, hvae_z1, hvae_hidden2, hvae_z2; /**< HVAE: the sizes of x → z1 and z1 → z2 */
    /** @} */
} nb_model_cfg;

/** The pytorch/examples VAE: MLP 784-400-20, ReLU, Bernoulli decoder (shape set by the caller);
 * VQ-VAE K = 128, Dc = 16, L = 8, β_c = 0.25; Kp = 500 pseudo-inputs; HVAE 200, 100, 100, 50. */
NB_API nb_model_cfg nb_model_defaults(void);

/** A stack of Linear layers with an activation between them, and after the last one too when
 * act_last (an encoder body that heads follow). */
typedef struct nb_mlp {
    nb_linear_layer layer[NB_MAX_HIDDEN + 1]; /**< the first n are used */
    /** @{ */
    int n, act_last;                          /**< layers; 1: an activation after the last too */
    /** @} */
    nb_act act;                               /**< the activation */
} nb_mlp;

/** sizes[0] → sizes[1] → ... → sizes[n]; parameters `"<name>.<i>.weight"`, `"<name>.<i>.bias"`.
 * @return NB_OK, or NB_ERR_ARG (too many layers, a bad size, a name taken, no memory) with
 *         nb_last_error() naming the layer; the parameters live in ps. */
NB_API nb_status nb_mlp_init(nb_mlp *m, nb_params *ps, const char *name, int n, const int *sizes,
                             nb_act act, int act_last, nb_rng *rng);
/** Applies the stack to x.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_mlp_fwd(nb_tape *tp, const nb_mlp *m, nb_tensor *x);
/** Applies the activation act to x.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_act_fwd(nb_tape *tp, nb_act act, nb_tensor *x);

/** An autoencoder: its configuration and layers, built by nb_model_init. The layers' parameters
 * belong to ps; the struct itself owns nothing and needs no freeing. */
typedef struct nb_model {
    nb_model_cfg cfg;             /**< as built (sizes checked); latent is the code's size: L·Dc for a
                                       VQ-VAE, z1's for an HVAE */
    nb_params *ps;                /**< the store holding every parameter, borrowed */
    /* encoder: body then heads (mu and logvar for VAEs, code for AEs) */
    nb_mlp enc;                   /**< MLP body, or the Linear after the conv body */
    /** @{ */
    nb_conv_layer enc_c1, enc_c2; /**< conv body */
    /** @} */
    /** @{ */
    nb_linear_layer head_mu, head_logvar; /**< heads: mu (or the AE's code) and logvar */
    /** @} */
    /* decoder */
    nb_mlp dec;                   /**< MLP body (ends in the output layer), or Linear before deconvs */
    /** @{ */
    nb_conv_layer dec_c1, dec_c2; /**< conv decoder: the transposed convolutions */
    /** @} */
    nb_tensor *dec_logvar;        /**< learned log-variance, or NULL */
    nb_linear_layer dec_lv_head;  /**< NB_DEC_GAUSSIAN_HEAD, MLP: log σ²(z) from the last hidden layer */
    nb_conv_layer dec_lv_conv;    /**< NB_DEC_GAUSSIAN_HEAD, conv: the same as a transposed convolution */
    int64_t in_dim;               /**< C·H·W */
    /** @{ */
    int h2, w2;                   /**< conv: spatial size after the encoder body */
    /** @} */
    /* VQ-VAE (conv): the 1×1 convolutions into and out of the code; the codebook */
    /** @{ */
    nb_conv_layer vq_in, vq_out;  /**< conv VQ-VAE: 64 → Dc before quantising, Dc → 64 after */
    /** @} */
    nb_tensor *codebook;          /**< VQ-VAE: `vq.codebook` (K, Dc) */
    int positions;                /**< VQ-VAE: L, the code positions per image */
    nb_tensor *pseudo;            /**< VampPrior: `vamp.pseudo` (Kp, C·H·W) */
    /* HVAE: q(z2|z1) and p(z1|z2), beside q(z1|x) (enc, head_mu, head_logvar) and p(x|z1) (dec) */
    /** @{ */
    nb_mlp enc2, prior1;          /**< HVAE: the bodies of q(z2|z1) and p(z1|z2) */
    nb_linear_layer head_mu2, head_logvar2, prior_mu, prior_logvar; /**< HVAE: their heads */
    /** @} */
} nb_model;

/** Registers and initialises every parameter in ps (PyTorch initialisers). Errors: nb_last_error.
 * @return NB_OK, or NB_ERR_ARG / NB_ERR_SHAPE for a configuration out of range, a name taken
 *         or no memory; the parameters registered so far stay in ps. */
NB_API nb_status nb_model_init(nb_model *m, const nb_model_cfg *cfg, nb_params *ps, nb_rng *rng);

/** Starts a learned decoder log-variance at the data's: log of each pixel's variance over the
 * images of ds (per pixel; and the head's bias, its weights zeroed) or of their mean (shared),
 * floored at NB_LOGVAR_INIT_FLOOR (or the clamp's minimum) and clamped like the model's. From
 * 0 (σ = 1), Adam at lr 1e-3 moves about 0.001 a step and would need thousands of steps to reach
 * the optimum (σ² = the squared error per pixel, near e^-3.4 on Fashion-MNIST); from the data's
 * variance it has about one nat to go. Does nothing for other decoders.
 * @return NB_OK, or an error (images of another shape) with nb_last_error() set. */
NB_API nb_status nb_model_init_logvar(nb_model *m, const nb_dataset *ds);
/** log 1e-3, the floor of nb_model_init_logvar: near-constant border pixels. */
#define NB_LOGVAR_INIT_FLOOR (-6.907755278982137)

/** The input shape the model takes for a batch of b: (b, C·H·W) for MLPs, (b, C, H, W) for conv.
 * Returns the ndim, 2 or 4. */
NB_API int nb_model_input_shape(const nb_model *m, int64_t b, int64_t shape[NB_MAX_DIMS]);

/** Examples idx[0..n) of ds as the model takes them, on tp: *x in the input shape, *y the one-hot
 * labels for a CVAE (else NULL). bin and rng as for nb_dataset_images.
 * @return NB_OK with *x and *y arena tensors (until nb_tape_reset); or an error (images of
 *         another shape, no labels for a CVAE, those of nb_dataset_images, the tape's) with
 *         nb_last_error() set and *x, *y NULL. */
NB_API nb_status nb_model_batch(nb_tape *tp, const nb_model *m, const nb_dataset *ds,
                                const int64_t *idx, int64_t n, nb_binarize bin, nb_rng *rng,
                                nb_tensor **x, nb_tensor **y);

/** q(z|x): mu and logvar (B, d); for AEs the code in *mu and *logvar = NULL. y is the one-hot
 * label (B, nclasses) for a CVAE, else NULL. x must have the model's input shape
 * (nb_model_input_shape). Returns the tape's status (outputs NULL on failure).
 * @note *mu and *logvar are arena tensors, valid until nb_tape_reset or nb_tape_free. */
NB_API nb_status nb_model_encode(nb_tape *tp, const nb_model *m, nb_tensor *x, nb_tensor *y,
                                 nb_tensor **mu, nb_tensor **logvar);
/** The decoder's raw output for codes z (B, d), in the input's shape: logits for Bernoulli,
 * pre-sigmoid means for Gaussian.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_model_decode(nb_tape *tp, const nb_model *m, nb_tensor *z, nb_tensor *y);
/** The expected image under p(x|z): sigmoid of the decoder output.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_model_mean(nb_tape *tp, const nb_model *m, nb_tensor *out);
/** The log-variance a decoder output implies: (B, 1) to broadcast, or in the image's shape.
 * (With NB_OUT_IDENTITY the mean is the output itself; with NB_DEC_GAUSSIAN_HEAD, its first
 * half.)
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_model_logvar(nb_tape *tp, const nb_model *m, nb_tensor *out);
/** -log p(x|z) per example (B) from the decoder output (AE: BCE or squared error).
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_model_nll(nb_tape *tp, const nb_model *m, nb_tensor *out, nb_tensor *x);

/** One minibatch: the model's input (corrupted for a DAE), the target it reconstructs, labels. */
typedef struct nb_batch {
    /** @{ */
    nb_tensor *input, *target, *y; /**< input, target, one-hot labels (CVAE, else NULL) */
    /** @} */
} nb_batch;

/** What a VAE trains on (docs/autoencoders.md has each one's formula). All but the ELBO apply
 * to NB_VAE only (MLP or conv). */
typedef enum nb_objective {
    NB_OBJ_ELBO,   /**< recon + β·KL(q(z|x) ‖ N(0, I)) */
    NB_OBJ_IWAE,   /**< −IWAE-K: −log mean_k p(x, z_k) / q(z_k|x), K = samples (Burda et al.) */
    /** recon + α·MI + β·TC + γ·dwKL, the KL split by minibatch-weighted sampling (Chen et al.);
     * couples the whole batch */
    NB_OBJ_TCVAE,
    NB_OBJ_WAE,    /**< recon + λ·MMD(q(z), N(0, I)), no KL (WAE-MMD); couples the whole batch */
    NB_OBJ_INFOVAE /**< recon + β·KL + (λ − 1)·MMD (InfoVAE, α = 0); couples the whole batch */
} nb_objective;

/** How nb_model_loss weighs and samples; start from nb_loss_defaults. */
typedef struct nb_loss_opts {
    double beta;        /**< KL weight (1: the ELBO), for NB_OBJ_ELBO and NB_OBJ_INFOVAE */
    double free_bits;   /**< > 0: each latent dim's batch-mean KL counts as at least this (ELBO) */
    nb_rng *rng;        /**< draws ε for the reparameterisation (and the prior's samples) */
    /** or a fixed ε: (B, d); (B, K, d) for NB_OBJ_IWAE (any shape of as many values), e.g.\ for
     * gradient checks */
    nb_tensor *eps;
    nb_objective objective; /**< the loss (0: the ELBO) */
    int samples;        /**< NB_OBJ_IWAE: K, the importance samples per example (0 counts as 1) */
    /** @{ */
    double tc_alpha, tc_beta, tc_gamma; /**< NB_OBJ_TCVAE: the weights of MI, TC and dwKL */
    /** @} */
    int64_t dataset_size; /**< NB_OBJ_TCVAE: N, the training set's size (0: the batch's) */
    double mmd_lambda;  /**< NB_OBJ_WAE, NB_OBJ_INFOVAE: λ (0: 10 for WAE, 1000 for InfoVAE) */
    nb_tensor *prior;   /**< NB_OBJ_WAE, NB_OBJ_INFOVAE: fixed samples z̃ (B, d) of N(0, I), or
                             NULL to draw them from rng */
} nb_loss_opts;

/** The ELBO with β = 1; K = 5 for IWAE, α = γ = 1 and β = 6 for β-TCVAE, λ by objective. */
NB_API nb_loss_opts nb_loss_defaults(void);
/** λ of the MMD when none is set: 10 for WAE, 1000 for InfoVAE, else 0. */
NB_API double nb_mmd_lambda_default(nb_objective obj);
/** The objective's name as the command line spells it ("elbo", "iwae", "tcvae", "wae",
 * "infovae"), or "?" for a value out of range. */
NB_API const char *nb_objective_name(nb_objective obj);
/** 1 when the objective's loss couples the examples of a batch (pairwise over it: tcvae, wae,
 * infovae), so that no rank of a data-parallel run can compute its share alone; else 0. */
NB_API int nb_objective_couples_batch(nb_objective obj);

/** What nb_model_loss computed: arena tensors of the tape it ran on (until nb_tape_reset). */
typedef struct nb_loss_terms {
    nb_tensor *loss;            /**< scalar: the objective's loss (ELBO: recon + β·KL, with free bits), mean over the batch */
    /** @{ */
    nb_tensor *recon, *kl;      /**< per example (B): -log p(x|z) and KL(q(z|x) ‖ p(z)), nats */
    /** @} */
    /** @{ */
    nb_tensor *mu, *logvar, *z; /**< the posterior and the sample used */
    /** @} */
    nb_tensor *out;             /**< decoder output */
    /** @{ */
    nb_tensor *kl1, *kl2;       /**< HVAE, per example (B): log q(z1|x) - log p(z1|z2) (one sample)
                                     and KL(q(z2|z1) ‖ N(0, I)); they add up to kl */
    /** @} */
    nb_tensor *mu2;             /**< HVAE: the mean of q(z2|z1) (B, z2) */
    nb_tensor *codes;           /**< VQ-VAE: the chosen code of every position (B·L), a constant */
    nb_tensor *z_e;             /**< VQ-VAE: the encoder's outputs, one row per position (B·L, Dc) */
    /** per example (B): the negative of the objective's bound, nats: −IWAE-K for NB_OBJ_IWAE,
     * recon + KL (−ELBO) otherwise */
    nb_tensor *bound;
    /** @{ */
    nb_tensor *mi, *tc, *dwkl;  /**< NB_OBJ_TCVAE: the batch's MI, TC and dwKL (scalars), else NULL */
    /** @} */
    nb_tensor *mmd;             /**< NB_OBJ_WAE, NB_OBJ_INFOVAE: the batch's MMD (scalar), else NULL */
} nb_loss_terms;

/** The model's training loss on a batch. Returns the tape's status. VQ-VAE: recon +
 * ‖sg(z_e) - z_q‖² + β_c·‖z_e - sg(z_q)‖² with the straight-through gradient, and kl = L·log K
 * (the uniform prior over codes); VampPrior and HVAE: recon + β·kl with kl estimated by the
 * sample (o->eps, when given, is (B, z1 + z2) for an HVAE).
 * @note The terms in *t are arena tensors, valid until nb_tape_reset or nb_tape_free; after an
 *       error, those from the failing op on are NULL. */
NB_API nb_status nb_model_loss(nb_tape *tp, const nb_model *m, const nb_batch *b,
                               const nb_loss_opts *o, nb_loss_terms *t);
/** n images decoded from z ~ N(0, I) (labels y for a CVAE), as expected images; a VQ-VAE
 * decodes codes drawn uniformly, a VampPrior draws z from its mixture, an HVAE z2 → z1 → x.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error. */
NB_API nb_tensor *nb_model_sample(nb_tape *tp, const nb_model *m, int64_t n, nb_tensor *y,
                                  nb_rng *rng);
/** 1 for a VAE, CVAE, VampPrior or HVAE (a posterior with a variance, a KL term), else 0. */
NB_API int nb_model_is_vae(const nb_model *m);

/** A VQ-VAE's codebook usage as a perplexity: exp(H(usage / Σ usage)), from 1 (one code) to k
 * (all used alike); *dead (may be NULL) gets the codes of zero usage. usage holds k counts.
 * @return the perplexity, or 0 when nothing was counted. */
NB_API double nb_vq_perplexity(const int64_t *usage, int k, int *dead);
/** Resets every unused code of a VQ-VAE (usage[j] == 0, k counts, k the codebook's size) to a row
 * of z_e (n rows of Dc values, f32 or f64, e.g.\ nb_loss_terms::z_e of the last batch) drawn
 * from rng, distinct rows while there are as many as codes, so that dead codes rejoin the
 * competition. *reset (may be NULL) gets their number.
 * @return NB_OK, or NB_ERR_ARG (not a VQ-VAE, k or the shape of z_e wrong, n < 1) with
 *         nb_last_error() set. */
NB_API nb_status nb_vq_reset_dead(nb_model *m, const int64_t *usage, int k, const void *z_e,
                                  nb_dtype dt, int64_t n, int dc, nb_rng *rng, int *reset);
/** Starts a VQ-VAE's codebook at K distinct encoder outputs of the first images of ds (at least
 * 256, and enough for 2K outputs), drawn from rng. From a small uniform start most codes lie
 * far from every encoder output and stay unused until a reset; from the data each starts where
 * some output is (the conv VQ-VAE's first epoch: perplexity 6 of 128 codes from U(-1/K, 1/K)).
 * Does nothing for other models. nb_trainer calls it before a new run's first step.
 * @return NB_OK, or an error (images of another shape, no memory) with nb_last_error() set. */
NB_API nb_status nb_vq_init_codebook(nb_model *m, const nb_dataset *ds, nb_rng *rng);

/* ---- corruptions (denoising) --------------------------------------------------------------- */

/** One corruption of a denoising autoencoder's input. */
typedef enum nb_corrupt_kind {
    NB_CORRUPT_GAUSSIAN,   /**< x + σ·ε, clipped to [0, 1]; param σ */
    NB_CORRUPT_DROPOUT,    /**< each pixel zeroed with probability p */
    NB_CORRUPT_BLUR,       /**< Gaussian blur of standard deviation σ (pixels) */
    NB_CORRUPT_BLOCK,      /**< one k×k square zeroed at a random place; param k */
    NB_CORRUPT_SALT_PEPPER,/**< each pixel set to 0 or 1 with probability p */
} nb_corrupt_kind;

/** Limits of a corruption. */
enum {
    NB_MAX_CORRUPT = 8 /**< corruptions applied in a row */
};

/** Corruptions applied in order (nb_corruption_parse reads them). */
typedef struct nb_corruption {
    int n;                                /**< corruptions used; 0: none */
    nb_corrupt_kind kind[NB_MAX_CORRUPT]; /**< what each does */
    double param[NB_MAX_CORRUPT];         /**< its σ, p or k */
} nb_corruption;

/** Parses "gaussian:0.3,dropout:0.5,blur:4,block:16,saltpepper:0.1" (applied in that order).
 * "", NULL and "none" give no corruption.
 * @return NB_OK, or NB_ERR_ARG naming the bad item in nb_last_error(). */
NB_API nb_status nb_corruption_parse(nb_corruption *c, const char *spec);
/** The spec nb_corruption_parse reads back ("none" for no corruption), into buf of size bytes. */
NB_API void nb_corruption_str(const nb_corruption *c, char *buf, size_t size);
/** A corrupted copy of x (B, C·H·W or B, C, H, W; images of channels × height × width), drawn
 * afresh from rng, as a constant on tp.
 * @return an arena tensor (until nb_tape_reset or nb_tape_free), or NULL with the tape's error
 *         (NB_ERR_SHAPE when x does not hold such images). */
NB_API nb_tensor *nb_corrupt(nb_tape *tp, const nb_corruption *c, nb_tensor *x, int channels,
                             int height, int width, nb_rng *rng);

/* ---- evaluation ---------------------------------------------------------------------------- */

/** A model's scores on a data set, from nb_model_evaluate. */
typedef struct nb_eval {
    int64_t n;            /**< images */
    double elbo_loss;     /**< -ELBO (recon + KL), nats per image */
    /** @{ */
    double recon, kl;     /**< nats per image */
    /** @} */
    double mse;           /**< squared error per image of the mean reconstruction */
    double bits_per_dim;  /**< -ELBO / (D ln 2) */
    int active_units;     /**< dims with Cov_x(E[z_d | x]) > 0.01 */
    int latent;           /**< latent dims */
    double kl_dim[256];   /**< mean KL per latent dim (first 256; VAE and CVAE) */
    /** @{ */
    double kl1, kl2;      /**< HVAE: the KL of each layer, nats per image (kl = kl1 + kl2) */
    /** @} */
    /** @{ */
    int active1, active2; /**< HVAE: active units of z1 (= active_units) and of z2 */
    /** @} */
    int latent2;          /**< HVAE: z2's dims */
    double perplexity;    /**< VQ-VAE: exp of the entropy of the codes' usage */
    int dead_codes;       /**< VQ-VAE: codes no position chose */
    nb_objective objective; /**< what bound measures */
    int samples;          /**< NB_OBJ_IWAE: K */
    double bound;         /**< the objective's own negative bound, nats per image: −IWAE-K for
                               NB_OBJ_IWAE, else elbo_loss */
    /** @{ */
    double mi, tc, dwkl;  /**< NB_OBJ_TCVAE: the KL's parts by minibatch-weighted sampling, per
                               image (N the data set's size), else 0 */
    /** @} */
    double mmd;           /**< NB_OBJ_WAE, NB_OBJ_INFOVAE: the mean MMD of the batches, else 0 */
} nb_eval;

/** Evaluates on every image of ds (no binarisation unless bin says). A model trained to denoise
 * is judged as it was trained: on inputs corrupted by `corrupt` (drawn from seed), against the
 * clean images; NULL or no corruption feeds the clean images.
 * @return NB_OK with *e filled, or an error (no memory, a failing op) with nb_last_error(). */
NB_API nb_status nb_model_evaluate(const nb_model *m, const nb_dataset *ds, int64_t batch,
                                   nb_binarize bin, const nb_corruption *corrupt, uint64_t seed,
                                   nb_eval *e);
/** The same, split across the ranks of d (nabla/dist.h; NULL: one process), a collective: each
 * rank evaluates every size-th batch, the sums are added up, every rank gets the result. Each
 * batch draws from its own stream, so the result is the single process's up to the order of
 * the sums. A failure on one rank is every rank's (nb_dist_agree).
 * @return as nb_model_evaluate, the same on every rank. */
NB_API nb_status nb_model_evaluate_dist(const nb_model *m, const nb_dataset *ds, int64_t batch,
                                        nb_binarize bin, const nb_corruption *corrupt,
                                        uint64_t seed, nb_dist *d, nb_eval *e);
/** The same, with the objective of o (its objective, samples, weights and λ; its rng, eps,
 * prior and dataset_size are ignored: N is ds's size) also measured: e->bound is the
 * objective's bound, and e->mi, tc, dwkl or e->mmd its terms. o NULL is the ELBO.
 * @return as nb_model_evaluate_dist. */
NB_API nb_status nb_model_evaluate_with(const nb_model *m, const nb_dataset *ds, int64_t batch,
                                        nb_binarize bin, const nb_corruption *corrupt,
                                        uint64_t seed, nb_dist *d, const nb_loss_opts *o,
                                        nb_eval *e);
/** Importance-sampled log p(x) with k samples from q(z|x) (Burda et al.), per image mean and its
 * standard error over images, in nats; logsumexp in f64. VAEs only: a VampPrior under its
 * mixture prior, an HVAE with (z1, z2) drawn from q; a VQ-VAE's posterior is a point mass, so it
 * is refused.
 * @return NB_OK, or NB_ERR_ARG (not a VAE, k < 1), NB_ERR_NOMEM, a failing op, with
 *         nb_last_error() set. */
NB_API nb_status nb_model_log_likelihood(const nb_model *m, const nb_dataset *ds, int64_t count,
                                         int k, nb_binarize bin, uint64_t seed, double *mean,
                                         double *stderr_);

/* ---- training ------------------------------------------------------------------------------ */

/** Everything a run is made of. The apps resolve flags, presets and `--config` files into one of
 * these; it is written to `<out>/config.json` and into every checkpoint. */
typedef struct nb_train_cfg {
    nb_model_cfg model;            /**< the model */
    nb_optim_cfg optim;            /**< the optimizer */
    nb_lr_schedule schedule;       /**< the learning rate per epoch */
    /** @{ */
    char data[512], out[512];      /**< the data directory; the output directory */
    /** @} */
    nb_binarize binarize;          /**< how pixels become values */
    /** @{ */
    int64_t train_size, test_size; /**< 0: all */
    /** @} */
    /** @{ */
    int64_t batch, eval_batch;     /**< training and evaluation batch sizes */
    /** @} */
    /** @{ */
    int epochs, threads;           /**< epochs to run; threads (0: the default) */
    /** @} */
    uint64_t seed;                 /**< every random draw of the run derives from it */
    /** @{ */
    double beta, free_bits;        /**< as in nb_loss_opts */
    /** @} */
    int kl_warmup;                 /**< epochs of linear warm-up of beta, per step */
    nb_corruption corrupt;         /**< the input is corrupted, the target clean (a DAE must) */
    int progress;                  /**< for the apps' step lines: -1 auto (a terminal), 0 off, 1 on */
    char preset[64];               /**< the preset it started from */
    nb_precision precision;        /**< of the Linear and conv products: f32, or bf16 (f32 weights and loss) */
    nb_objective objective;        /**< what a VAE trains on */
    int samples;                   /**< NB_OBJ_IWAE: K */
    double tc_beta;                /**< NB_OBJ_TCVAE: the TC weight (α = γ = 1) */
    double mmd_lambda;             /**< NB_OBJ_WAE, NB_OBJ_INFOVAE: λ (0: the objective's default) */
    int kl_cycle;                  /**< > 0: cyclical β, cycles of this many epochs (nb_train_beta) */
    double collapse;               /**< for the apps: warn when active units < this fraction of the dims */
    int64_t valid;                 /**< > 0: the last this many training images are a validation set */
    int vq_restart;                /**< VQ-VAE: steps between restarts of unused codes (0: at epoch ends only) */
} nb_train_cfg;

/** The pytorch/examples set-up on Fashion-MNIST. */
NB_API nb_train_cfg nb_train_defaults(void);
/** Applies a preset: "pytorch-examples", "aevb", "conv", "dae", "cvae", "iwae", "pythae-vae".
 * @return NB_OK, or NB_ERR_ARG for an unknown name (nb_last_error lists the presets). */
NB_API nb_status nb_train_preset(nb_train_cfg *c, const char *name);
/** β at optimizer step `step` of a run with steps_per_epoch steps an epoch: the configured β,
 * after the linear warm-up over kl_warmup epochs, or on the cyclical schedule of kl_cycle (in
 * each cycle of N epochs β rises linearly from 0 over the first half, per step, then holds).
 * @return the KL weight of that step. */
NB_API double nb_train_beta(const nb_train_cfg *c, int64_t step, int64_t steps_per_epoch);
/** Sets one key as the command line and config files spell it ("latent", "hidden" = "392,196",
 * "optimizer", "lr", "kl-warmup", ...); a bad key or value is an error naming both.
 * @return NB_OK, or NB_ERR_ARG with the message in nb_last_error(). */
NB_API nb_status nb_train_set(nb_train_cfg *c, const char *key, const char *value);
/** Reads a JSON object of keys (as nb_train_set takes them) to values (strings or numbers).
 * @return NB_OK, or NB_ERR_IO, NB_ERR_FORMAT, NB_ERR_ARG, NB_ERR_NOMEM with nb_last_error()
 *         naming the file (and the key); keys before the bad one are applied. */
NB_API nb_status nb_train_load_config(nb_train_cfg *c, const char *path);
/** The resolved configuration as a JSON object (malloc'd; free it).
 * @return a string the caller frees with free(), or NULL when out of memory. */
NB_API char *nb_train_cfg_json(const nb_train_cfg *c);
/** Every key nb_train_set accepts, with a one-line description each, for `--help`. */
NB_API void nb_train_keys_help(FILE *f);
/** Key i of that table, with its one-line help in *help and its default as typed written into
 * def (size bytes), so a program can list only the keys it uses.
 * @return the key's name, or NULL past the table's end. */
NB_API const char *nb_train_key_info(int i, const char **help, char *def, size_t size);

/** What a run reports after each epoch. */
typedef struct nb_epoch_log {
    int epoch;                 /**< 1-based, completed */
    int64_t step;              /**< optimizer steps so far */
    /** @{ */
    double beta, lr;           /**< the KL weight of the epoch's last step, the learning rate */
    /** @} */
    /** @{ */
    double train_loss, train_recon, train_kl; /**< means over the epoch, nats per image; the loss is
                                                   the negative bound (nb_loss_terms::bound) */
    /** @} */
    /** @{ */
    double train_mi, train_tc, train_dwkl, train_mmd; /**< the objective's batch terms, means over the
                                                           epoch (0 when it has none) */
    /** @} */
    nb_eval test;              /**< the evaluation on the test set */
    nb_eval valid;             /**< on the validation set (valid.n = 0 without one) */
    int best;                  /**< 1 when the validation bound is the best so far (best.safetensors written) */
    /** @{ */
    double perplexity;         /**< VQ-VAE: exp of the entropy of the codes' usage over the epoch */
    int dead_codes;            /**< VQ-VAE: codes unused in the epoch, reset at its end */
    /** @} */
    /** @{ */
    double seconds, images_per_s; /**< the epoch's time and speed */
    /** @} */
} nb_epoch_log;

/** What a run reports after each optimizer step. */
typedef struct nb_step_log {
    /** @{ */
    int epoch, epochs;         /**< the epoch under way (1-based) and the run's last */
    /** @} */
    /** @{ */
    int64_t batch, batches;    /**< batches of this epoch done, and in all */
    /** @} */
    int64_t step;              /**< optimizer steps so far */
    double loss;               /**< this step's loss */
    double mean_loss;          /**< the epoch's mean so far, nats per image */
    /** @{ */
    double images_per_s, eta_s; /**< the epoch's speed, and the time left in it */
    /** @} */
} nb_step_log;

/** Where a run's progress goes: the library never prints. Every member may be NULL. The logs
 * are valid during the call only. */
typedef struct nb_train_hooks {
    void (*on_step)(const nb_step_log *, void *ctx);   /**< after every step */
    void (*on_epoch)(const nb_epoch_log *, void *ctx); /**< after each epoch's checkpoint */
    void *ctx;                                         /**< passed to both */
} nb_train_hooks;

/** A training run: its data, model, optimizer and tape. Opaque; made by nb_trainer_new,
 * released by nb_trainer_free. */
typedef struct nb_trainer nb_trainer;

/** Loads the data, builds the model and optimizer, resumes from `<path>` when resume is set.
 * Returns NULL with nb_last_error() set on failure.
 * @note The caller owns the trainer: release it with nb_trainer_free. It writes
 *       `<out>/config.json` at once. */
NB_API nb_trainer *nb_trainer_new(const nb_train_cfg *cfg, const char *resume);
/** The same run, data-parallel over the ranks of d (nabla/dist.h; NULL is nb_trainer_new), called
 * by every rank with the same configuration (data and out may differ): --batch is the global
 * batch, of which each rank computes its shard; the gradients are averaged in one all-reduce
 * per step and every rank takes the same optimizer step; the draws of a step are keyed by
 * example, so the run follows the single process's trajectory up to the order of the sums.
 * Rank 0 alone writes config.json, metrics.csv and checkpoints and calls the hooks; the
 * evaluation is split across the ranks. A failure on any rank (data, NaN, a save) stops every
 * rank at the same step, each returning the failing rank's status and message ("rank 1: ...").
 * A checkpoint resumes only on as many ranks as wrote it. threads 0 means the node's cores
 * divided by its ranks (nb_dist_threads). --free-bits is refused on several ranks: its hinge is
 * on the whole batch's mean KL, which no rank holds.
 * @return the trainer (the caller frees it with nb_trainer_free), or NULL with nb_last_error(). */
NB_API nb_trainer *nb_trainer_new_dist(const nb_train_cfg *cfg, const char *resume, nb_dist *d);
/** Frees the trainer and everything it holds (data, parameters, optimizer, tape); NULL is
 * ignored. */
NB_API void nb_trainer_free(nb_trainer *t);
/** Trains the remaining epochs, writing `<out>/metrics.csv` and an atomic checkpoint after every
 * epoch, and reporting progress through hooks (may be NULL). Stops with NB_ERR_NAN and a
 * message naming the step and the op or parameter when a loss or gradient turns non-finite; the
 * last good checkpoint stays. With a validation set (valid > 0) each epoch also evaluates it
 * and `<out>/best.safetensors` holds the checkpoint of the lowest validation bound so far.
 * @return NB_OK, or the first error (NB_ERR_NAN, NB_ERR_IO, ...) with nb_last_error() set. */
NB_API nb_status nb_trainer_run(nb_trainer *t, const nb_train_hooks *hooks);
/** The trainer's model.
 * @return owned by the trainer, valid until nb_trainer_free. */
NB_API const nb_model *nb_trainer_model(const nb_trainer *t);
/** The training (test = 0) or test (test = 1) data, after train_size or test_size (and without
 * the validation images).
 * @return owned by the trainer, valid until nb_trainer_free. */
NB_API const nb_dataset *nb_trainer_data(const nb_trainer *t, int test);
/** The configuration as resolved (a resumed run's is the checkpoint's).
 * @return owned by the trainer, valid until nb_trainer_free. */
NB_API const nb_train_cfg *nb_trainer_cfg(const nb_trainer *t);

/** Checkpoints: parameters, optimizer state, epoch, step and the configuration in one
 * safetensors file. Every random draw of a run is keyed by (seed, step), so these are its
 * whole state: a resumed run continues bit for bit. o may be NULL.
 * @return NB_OK, or an error of nb_st_save (the old file untouched) with nb_last_error(). */
NB_API nb_status nb_checkpoint_save(const char *path, nb_params *ps, nb_optim *o,
                                    const nb_train_cfg *cfg, int epoch, int64_t step);
/** Loads a checkpoint's configuration and progress (for apps that rebuild the model from it).
 * @return NB_OK, or NB_ERR_IO / NB_ERR_FORMAT (not a nabla checkpoint, no configuration) and
 *         the errors of nb_train_set, with nb_last_error() naming the file. */
NB_API nb_status nb_checkpoint_config(const char *path, nb_train_cfg *cfg, int *epoch, int64_t *step);
/** Loads parameters (and the optimizer state when o is not NULL).
 * @return NB_OK, or the errors of nb_params_load_from, or NB_ERR_IO / NB_ERR_FORMAT (not a
 *         checkpoint, optimizer state missing or of another shape), with nb_last_error(). */
NB_API nb_status nb_checkpoint_load(const char *path, nb_params *ps, nb_optim *o);

#ifdef __cplusplus
}
#endif
#endif
