/* nn/linear.c — not written yet. */
#include "nn/nn.h"
