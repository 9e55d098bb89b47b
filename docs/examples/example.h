/* docs/examples/example.h — what the example programs share: a gradient check that prints its
 * report, and a small training loop on the first images of an MNIST-style data set. */
#ifndef NB_EXAMPLE_H
#define NB_EXAMPLE_H

#include <nabla/nabla.h>

/* The loss of one batch x (B, ...) as a scalar on tp; rng draws the step's noise. */
typedef nb_tensor *(*example_loss_fn)(nb_tape *tp, nb_tensor *x, nb_rng *rng, void *ctx);

/* Runs the check, prints a line per tensor; 0 when every gradient is right. */
int example_gradcheck(const nb_gradcheck_case *c);

/* Trains m's parameters (and any others in its store, registered before this call) on the first
 * n training images of dir (dynamically binarised) with Adam at lr, for epochs; prints each
 * epoch's mean loss. 0 when the last epoch's mean is below the first's. */
int example_train(const char *dir, int64_t n, int epochs, int64_t batch, double lr,
                  const nb_model *m, example_loss_fn loss, void *ctx);

/* The VAE the examples build on: MLP 784-hidden-latent (or h x w images for gradient checks). */
nb_model_cfg example_vae(int height, int width, int hidden, int latent);

#endif
