/* nabla.h — the public umbrella header. */
#ifndef NABLA_H
#define NABLA_H

#include "tensor/tensor.h"
#include "tensor/rng.h"
#include "autograd/autograd.h"
#include "nn/nn.h"
#include "models/models.h"

#endif
