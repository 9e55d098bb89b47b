/* nn/loss.c — not written yet. */
#include "nn/nn.h"
