/* nn/conv.c — not written yet. */
#include "nn/nn.h"
