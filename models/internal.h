/* models/internal.h — internal to models/: what config.c and train.c share. */
#ifndef NB_MODELS_INTERNAL_H
#define NB_MODELS_INTERNAL_H

#include "nabla/models.h"

/* A configuration back from its JSON text (config.json, a checkpoint's metadata). */
nb_status nb__train_cfg_from_json(nb_train_cfg *c, const char *text, const char *origin);

/* The encoder's body (before its heads) on x, with the label attached for a CVAE. */
nb_tensor *nb__model_body(nb_tape *tp, const nb_model *m, nb_tensor *x, nb_tensor *y);
/* z = μ + e^{lv/2}·ε: the reparameterisation every stochastic layer uses. */
nb_tensor *nb__reparam(nb_tape *tp, nb_tensor *mu, nb_tensor *logvar, nb_tensor *eps);

/* A VAE's or CVAE's MLP decoder on z up to its last Linear layer, *last, whose output is the
 * decoder's (no log-variance head): the input of that layer. NULL, *last untouched, for any other
 * decoder; NULL with the tape's error when a layer fails. */
nb_tensor *nb__decode_trunk(nb_tape *tp, const nb_model *m, nb_tensor *z, nb_tensor *y, const nb_linear_layer **last);

/* −log p(x|z) of a Bernoulli MLP decoder for the k samples of b images, into nll (k·b doubles,
 * sample-major: row j·b + i against image i of x), from h, the input of its last Linear layer
 * `last` (nb__decode_trunk), without the logits reaching memory. Returns 0 when the layout does not
 * suit the row-sum kernel (the tape's path then serves), else 1 with *st the outcome. */
int nb__bernoulli_nll(const nb_linear_layer *last, const nb_tensor *h, const nb_tensor *x, int64_t b, double *nll,
                      nb_status *st);

/* x (B, ...) repeated k times in the model's input shape, sample-major: row j·B + i is image i. */
nb_tensor *nb__repeat(nb_tape *tp, const nb_model *m, nb_tensor *x, int k);

/* The zoo's kinds (models/zoo_*.c), dispatched from model.c and metrics.c. */
nb_status nb__vq_init(nb_model *m, nb_params *ps, nb_rng *rng);
nb_tensor *nb__vq_project(nb_tape *tp, const nb_model *m, nb_tensor *body);
nb_tensor *nb__vq_quantise(nb_tape *tp, const nb_model *m, nb_tensor *ze, nb_tensor **codes);
nb_tensor *nb__vq_decode(nb_tape *tp, const nb_model *m, nb_tensor *z);
nb_status nb__vq_loss(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o, nb_loss_terms *t);
nb_tensor *nb__vq_sample(nb_tape *tp, const nb_model *m, int64_t n, nb_rng *rng);

nb_status nb__vamp_init(nb_model *m, nb_params *ps, nb_rng *rng);
nb_tensor *nb__vamp_log_prior(nb_tape *tp, const nb_model *m, nb_tensor *z);
nb_status nb__vamp_loss(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o, nb_loss_terms *t);
nb_tensor *nb__vamp_sample(nb_tape *tp, const nb_model *m, int64_t n, nb_rng *rng);
nb_tensor *nb__vamp_log_weights(nb_tape *tp, const nb_model *m, nb_tensor *x, int k, nb_rng *rng);

nb_status nb__hvae_init(nb_model *m, nb_params *ps, nb_rng *rng);
nb_status nb__hvae_loss(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o, nb_loss_terms *t);
nb_tensor *nb__hvae_sample(nb_tape *tp, const nb_model *m, int64_t n, nb_rng *rng);
nb_tensor *nb__hvae_log_weights(nb_tape *tp, const nb_model *m, nb_tensor *x, int k, nb_rng *rng);
/* nb_model_loss for every objective but the ELBO (models/zoo_objectives.c). */
nb_status nb__objective_loss(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o,
                             nb_loss_terms *t);

#endif
