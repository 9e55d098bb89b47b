/** @file
 * nabla.h — the public umbrella header: includes all the others (see the main page).
 */
/** @mainpage nabla
 *
 * nabla is a tensor and reverse-mode autodiff library in C17 with a zoo of autoencoders.
 *
 * Tensors (nabla/tensor.h) are plain structs: dtype (f32 or f64), up to 4 dims, shape and
 * strides in elements (0 = broadcast), a data pointer. They never own memory.
 *
 * The tape (nabla/autograd.h) is where computation happens. Every op takes the tape first,
 * computes its result at once into the tape's arena, and records itself when an input needs a
 * gradient. nb_backward walks the records in reverse, adding (+=) into each input's gradient.
 * nb_tape_reset rewinds the arena: after the first step, training allocates nothing.
 * Errors stick to the tape: a failing op records its message and returns NULL, and the ops after
 * it pass the NULL along, so you check once, at nb_backward.
 *
 * Parameters live in an nb_params store (flat blocks of values and gradients), optimizers update
 * that store in one pass (nabla/nn.h), models are small structs of layers (nabla/models.h).
 *
 * A worked example, linear regression (docs/examples/regression.c, built and run by the tests):
 *
 *     nb_params *ps = nb_params_new(NB_F32);
 *     nb_tensor *w = nb_param(ps, "w", NB_SHAPE(3, 1));
 *     nb_optim *opt = nb_optim_new(ps, nb_optim_defaults(NB_SGD, 0.1));
 *     nb_tape *tp = nb_tape_new();
 *     for (int step = 0; step < 100; step++) {
 *         nb_tape_reset(tp);
 *         nb_tensor *x = nb_tensor_from(tp, NB_F32, NB_SHAPE(8, 3), xs, 8 * 3);
 *         nb_tensor *y = nb_tensor_from(tp, NB_F32, NB_SHAPE(8, 1), ys, 8);
 *         nb_tensor *loss = nb_mse(tp, nb_matmul(tp, x, w), y, NB_REDUCE_MEAN);
 *         if (nb_backward(tp, loss)) { fprintf(stderr, "%s\n", nb_tape_error(tp)); break; }
 *         if (nb_optim_step(opt)) { fprintf(stderr, "%s\n", nb_last_error()); break; }
 *     }
 *     nb_tape_free(tp), nb_optim_free(opt), nb_params_free(ps);
 *
 * docs/ teaches the autoencoders and how to write a new model; docs/architecture.md explains how
 * an op is added.
 *
 * Ownership in short: what a `*_new` call or nb_st_open returns, and what nb_dataset_load and
 * nb_batcher_init fill in, is yours, released by the matching `*_free` or nb_st_close; the
 * malloc'd results of nb_train_cfg_json and nb_idx_read are released with free(). Every other
 * pointer a call returns points into an object you already own (a tape's arena, a parameter
 * store, an optimizer, an open file, a trainer) and lives until that object is reset or freed.
 * A failing call returns NULL or a non-zero nb_status, with the message in nb_last_error() (and,
 * for an op, in its tape's sticky nb_tape_error()). Each function's page says which.
 */
#ifndef NABLA_H
#define NABLA_H

#include "tensor.h"
#include "rng.h"
#include "autograd.h"
#include "op.h"
#include "gradcheck.h"
#include "nn.h"
#include "dist.h"
#include "models.h"

#endif
