/* nn/internal.h — internal to nn/: its op list and what its ops share.
 *
 * nn's ops are written against the public op interface (nabla/op.h) and the tensor kernels
 * (tensor/kernels.h), never against autograd's internals: autograd knows nothing of nn.
 */
#ifndef NB_NN_INTERNAL_H
#define NB_NN_INTERNAL_H

#include "nabla/nn.h"
#include "nabla/op.h"
#include "tensor/kernels.h"

#define NB_OP(name) extern const nb_op_def nb__op_##name;
#include "nn/ops.def"
#undef NB_OP

/* "(3,5,7)" for messages, in a buffer of the caller's scope. */
#define NB_SHP(t) nb_shape_str((t), (char[64]){0}, 64)

#endif
