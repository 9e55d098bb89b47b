/* nn/optim.c — not written yet. */
#include "nn/nn.h"
