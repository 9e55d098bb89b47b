/* nn/init.c — not written yet. */
#include "nn/nn.h"
