/* docs/examples/iwae.h — the IWAE-k objective over a VAE's encoder and decoder. */
#ifndef NB_EXAMPLE_IWAE_H
#define NB_EXAMPLE_IWAE_H

#include <nabla/nabla.h>

/* -L_k averaged over the batch x (B, ...), a scalar to call nb_backward on. eps (k, B, d) fixes
 * the noise (gradient checks); NULL draws it from rng. */
nb_tensor *iwae_loss(nb_tape *tp, const nb_model *m, nb_tensor *x, int k, nb_tensor *eps, nb_rng *rng);

#endif
