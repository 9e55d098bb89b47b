/* nn/data.c — not written yet. */
#include "nn/nn.h"
