/* nn/safetensors.c — not written yet. */
#include "nn/nn.h"
