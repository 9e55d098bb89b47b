/* models/internal.h — internal to models/: what config.c and train.c share. */
#ifndef NB_MODELS_INTERNAL_H
#define NB_MODELS_INTERNAL_H

#include "nabla/models.h"

/* A configuration back from its JSON text (config.json, a checkpoint's metadata). */
nb_status nb__train_cfg_from_json(nb_train_cfg *c, const char *text, const char *origin);

/* nb_model_loss for every objective but the ELBO (models/zoo_objectives.c). */
nb_status nb__objective_loss(nb_tape *tp, const nb_model *m, const nb_batch *b, const nb_loss_opts *o,
                             nb_loss_terms *t);

#endif
