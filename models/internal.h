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
