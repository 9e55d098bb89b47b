/* tests/test_gradcheck.c — an f64 gradient check for every op in autograd/ops.def, on odd
 * shapes and broadcasting cases, and a coverage check that fails when an op has none. */
#include <math.h>

#include "nabla/nn.h"
#include "tests/gc_tap.h"
#include "tests/tap.h"

#define B1(fn) static nb_tensor *b_##fn(nb_tape *tp, nb_tensor **x, void *ctx) { (void)ctx; return nb_##fn(tp, x[0]); }
#define B2(fn) static nb_tensor *b_##fn(nb_tape *tp, nb_tensor **x, void *ctx) { (void)ctx; return nb_##fn(tp, x[0], x[1]); }
#define BUILD(name) static nb_tensor *b_##name(nb_tape *tp, nb_tensor **x, void *ctx)

B2(add) B2(sub) B2(mul) B2(div) B2(matmul)
B1(neg) B1(exp) B1(log) B1(log1p) B1(sqrt) B1(square) B1(tanh) B1(sigmoid) B1(relu)
B1(softplus) B1(log_sigmoid) B1(sum_all)

BUILD(scale) { (void)ctx; return nb_scale(tp, x[0], -1.7); }
BUILD(add_scalar) { (void)ctx; return nb_add_scalar(tp, x[0], 0.3); }
BUILD(clamp) { (void)ctx; return nb_clamp(tp, x[0], -0.5, 0.5); }
BUILD(where) { (void)ctx; return nb_where(tp, x[0], x[1], x[2]); }
BUILD(softplus_wide) { (void)ctx; return nb_softplus(tp, nb_scale(tp, x[0], 15.0)); }
BUILD(log_sigmoid_wide) { (void)ctx; return nb_log_sigmoid(tp, nb_scale(tp, x[0], 15.0)); }
BUILD(sum_1) { (void)ctx; return nb_sum(tp, x[0], NB_AXES(1), 0); }
BUILD(sum_02_keep) { (void)ctx; return nb_sum(tp, x[0], NB_AXES(0, 2), 1); }
BUILD(mean_last) { (void)ctx; return nb_mean(tp, x[0], NB_AXES(-1), 0); }
BUILD(lse_1) { (void)ctx; return nb_logsumexp(tp, x[0], NB_AXES(1), 0); }
BUILD(lse_all_keep) { (void)ctx; return nb_logsumexp(tp, x[0], 0, NULL, 1); }
/* exp(800) overflows even f64: the max shift must keep it finite */
BUILD(lse_shifted)
{
    (void)ctx;
    return nb_add_scalar(tp, nb_logsumexp(tp, nb_add_scalar(tp, x[0], 800.0), NB_AXES(-1), 0), -800.0);
}
BUILD(matmul_ta) { (void)ctx; return nb_matmul(tp, nb_transpose(tp, x[0], 0, 1), x[1]); }
BUILD(matmul_tb) { (void)ctx; return nb_matmul(tp, x[0], nb_transpose(tp, x[1], 0, 1)); }
BUILD(reshape) { (void)ctx; return nb_reshape(tp, x[0], NB_SHAPE(-1, 7)); }
BUILD(reshape_strided) { (void)ctx; return nb_reshape(tp, nb_transpose(tp, x[0], 0, 2), NB_SHAPE(7, 15)); }
BUILD(permute) { (void)ctx; return nb_permute(tp, x[0], NB_AXES(2, 0, 1)); }
BUILD(slice) { (void)ctx; return nb_slice(tp, x[0], 1, 1, 5, 2); }
BUILD(slice_neg) { (void)ctx; return nb_slice(tp, x[0], -1, -4, -1, 1); }
BUILD(expand) { (void)ctx; return nb_expand(tp, x[0], NB_SHAPE(3, 5, 7)); }
BUILD(contiguous) { (void)ctx; return nb_contiguous(tp, nb_transpose(tp, x[0], 1, 2)); }
BUILD(concat1) { (void)ctx; return nb_concat(tp, 1, x[0], x[1]); }
BUILD(concat_last) { (void)ctx; return nb_concat(tp, -1, x[0], x[1]); }
BUILD(leaky_relu) { (void)ctx; return nb_leaky_relu(tp, x[0], 0.2); }
BUILD(elu) { (void)ctx; return nb_elu(tp, x[0], 1.3); }
B1(gelu)
BUILD(linear) { (void)ctx; return nb_linear(tp, x[0], x[1], x[2]); }
/* one weight used twice (tied layers): its gradient is the sum of both uses */
BUILD(linear_tied) { (void)ctx; return nb_linear(tp, nb_tanh(tp, nb_linear(tp, x[0], x[1], x[2])), x[1], x[2]); }
BUILD(linear_nobias) { (void)ctx; return nb_linear(tp, x[0], x[1], NULL); }
BUILD(linear_relu) { (void)ctx; return nb_linear_relu(tp, x[0], x[1], x[2]); }
BUILD(linear_relu_nobias) { (void)ctx; return nb_linear_relu(tp, x[0], x[1], NULL); }
static nb_conv_cfg cfg_s2p1 = {{2, 2}, {1, 1}, {0, 0}, {1, 1}};
static nb_conv_cfg cfg_dil = {{1, 2}, {2, 1}, {0, 0}, {2, 1}};
static nb_conv_cfg cfg_t_s2p1op1 = {{2, 2}, {1, 1}, {1, 1}, {1, 1}};
static nb_conv_cfg cfg_t_s3p1op2 = {{3, 3}, {1, 1}, {2, 2}, {1, 1}};
static nb_conv_cfg cfg_t_dil = {{2, 1}, {0, 1}, {1, 0}, {2, 2}};
BUILD(conv) { return nb_conv2d(tp, x[0], x[1], x[2], *(nb_conv_cfg *)ctx); }
BUILD(conv_nobias) { return nb_conv2d(tp, x[0], x[1], NULL, *(nb_conv_cfg *)ctx); }
BUILD(deconv) { return nb_conv_transpose2d(tp, x[0], x[1], x[2], *(nb_conv_cfg *)ctx); }
BUILD(conv_relu) { return nb_conv2d_relu(tp, x[0], x[1], x[2], *(nb_conv_cfg *)ctx); }
BUILD(deconv_relu) { return nb_conv_transpose2d_relu(tp, x[0], x[1], x[2], *(nb_conv_cfg *)ctx); }
BUILD(deconv_nobias) { return nb_conv_transpose2d(tp, x[0], x[1], NULL, *(nb_conv_cfg *)ctx); }
BUILD(bce_mean) { (void)ctx; return nb_bce_logits(tp, x[0], x[1], NB_REDUCE_MEAN); }
BUILD(bce_none) { (void)ctx; return nb_bce_logits(tp, x[0], x[1], NB_REDUCE_NONE); }
BUILD(mse_sum) { (void)ctx; return nb_mse(tp, x[0], x[1], NB_REDUCE_SUM); }
BUILD(mse_none) { (void)ctx; return nb_mse(tp, x[0], x[1], NB_REDUCE_NONE); }
BUILD(gnll_mean) { (void)ctx; return nb_gaussian_nll(tp, x[0], x[1], x[2], NB_REDUCE_MEAN); }
BUILD(gnll_none) { (void)ctx; return nb_gaussian_nll(tp, x[0], x[1], x[2], NB_REDUCE_NONE); }
BUILD(kl_mean) { (void)ctx; return nb_kl_normal(tp, x[0], x[1], NB_REDUCE_MEAN); }
BUILD(kl_none) { (void)ctx; return nb_kl_normal(tp, x[0], x[1], NB_REDUCE_NONE); }
B1(abs) B2(maximum) B2(minimum)
BUILD(pow_frac) { (void)ctx; return nb_pow(tp, x[0], 2.7); }
BUILD(pow_neg) { (void)ctx; return nb_pow(tp, x[0], -1.3); }
BUILD(pow_int) { (void)ctx; return nb_pow(tp, x[0], 3.0); }
BUILD(max_1) { (void)ctx; return nb_max(tp, x[0], NB_AXES(1), 0); }
BUILD(max_02_keep) { (void)ctx; return nb_max(tp, x[0], NB_AXES(0, 2), 1); }
BUILD(min_last) { (void)ctx; return nb_min(tp, x[0], NB_AXES(-1), 0); }
BUILD(min_all) { (void)ctx; return nb_min(tp, x[0], 0, NULL, 0); }
BUILD(mean_all) { (void)ctx; return nb_mean_all(tp, x[0]); }
BUILD(softmax_1) { (void)ctx; return nb_softmax(tp, x[0], 1); }
BUILD(softmax_last) { (void)ctx; return nb_softmax(tp, x[0], -1); }
BUILD(log_softmax_0) { (void)ctx; return nb_log_softmax(tp, x[0], 0); }
BUILD(log_softmax_wide) { (void)ctx; return nb_log_softmax(tp, nb_scale(tp, x[0], 300.0), -1); }
BUILD(index_select_0) { (void)ctx; return nb_index_select(tp, x[0], 0, x[1]); }
BUILD(index_select_1) { (void)ctx; return nb_index_select(tp, x[0], 1, x[1]); }
BUILD(gather_1) { (void)ctx; return nb_gather(tp, x[0], 1, x[1]); }
BUILD(gather_last) { (void)ctx; return nb_gather(tp, x[0], -1, x[1]); }
/* the argmin of a distance picks rows of a codebook: VQ-VAE's lookup */
BUILD(select_argmin) { (void)ctx; return nb_index_select(tp, x[0], 0, nb_argmin(tp, x[1], 1, 0)); }
BUILD(logpdf) { (void)ctx; return nb_normal_log_prob(tp, x[0], x[1], x[2]); }
BUILD(logpdf_std) { (void)ctx; return nb_normal_log_prob(tp, x[0], NULL, NULL); }
BUILD(imq_ab) { (void)ctx; return nb_imq_kernel_sum(tp, x[0], x[1], x[2]); }
/* one tensor on both sides, as the MMD's within-sample sums: both paths' gradients add up */
BUILD(imq_aa) { (void)ctx; return nb_imq_kernel_sum(tp, x[0], x[0], x[1]); }
/* a tensor reaching the output both through a broadcast and directly */
BUILD(broadcast_and_direct) { (void)ctx; return nb_add(tp, nb_mul(tp, x[0], x[1]), nb_sum(tp, x[1], NB_AXES(0), 0)); }
/* the same input reaching the output along two paths: gradients must add up */
BUILD(fanout) { (void)ctx; return nb_mul(tp, nb_tanh(tp, x[0]), nb_exp(tp, x[0])); }

#define ANY(...) NB_GC_IN(NB_GC_ANY, __VA_ARGS__)
#define POS(...) NB_GC_IN(NB_GC_POS, __VA_ARGS__)
#define AWAY(...) NB_GC_IN(NB_GC_AWAY, __VA_ARGS__)
#define MASK(...) NB_GC_IN(NB_GC_MASK, __VA_ARGS__)
#define UNIT(...) NB_GC_IN(NB_GC_UNIT, __VA_ARGS__)
#define IDX(max_, ...)                                                                       \
    {.ndim = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), .shape = {__VA_ARGS__}, \
     .dom = NB_GC_INDEX, .index_max = (max_)}
#define CONST(...) NB_GC_IN(NB_GC_CONST, __VA_ARGS__)
#define DISTINCT(...) NB_GC_IN(NB_GC_DISTINCT, __VA_ARGS__)

/* A case and the op it must record (by name: the descriptors are found at run time). */
typedef struct op_case {
    const char *op;
    nb_gradcheck_case c;
} op_case;

#define CASE_CTX(op_, label_, fn, ctx_, ...)                                                 \
    {#op_, {.label = label_, .build = b_##fn, .ctx = ctx_,                                   \
            .nin = (int)(sizeof((nb_gc_input[]){__VA_ARGS__}) / sizeof(nb_gc_input)),        \
            .in = {__VA_ARGS__}}}
#define CASE(op_, label_, fn, ...) CASE_CTX(op_, label_, fn, NULL, __VA_ARGS__)
/* a case with its own seed (the others get 1000 + their index) */
#define CASE_SEED(op_, label_, fn, ctx_, seed_, ...)                                          \
    {#op_, {.label = label_, .build = b_##fn, .ctx = ctx_, .seed = seed_,                    \
            .nin = (int)(sizeof((nb_gc_input[]){__VA_ARGS__}) / sizeof(nb_gc_input)),        \
            .in = {__VA_ARGS__}}}

static const op_case cases[] = {
    CASE(add, "add (3,5,7)+(3,5,7)", add, ANY(3, 5, 7), ANY(3, 5, 7)),
    CASE(add, "add (3,5,7)+(5,1) broadcast", add, ANY(3, 5, 7), ANY(5, 1)),
    CASE(add, "add (1,5,1)+(3,1,7) broadcast both", add, ANY(1, 5, 1), ANY(3, 1, 7)),
    CASE(sub, "sub (3,5,7)-(7)", sub, ANY(3, 5, 7), ANY(7)),
    CASE(mul, "mul (3,5,7)*(3,5,7)", mul, ANY(3, 5, 7), ANY(3, 5, 7)),
    CASE(mul, "mul (3,1,7)*(5,1) broadcast", mul, ANY(3, 1, 7), ANY(5, 1)),
    CASE(mul, "mul by a scalar tensor", mul, ANY(3, 5), NB_GC_SCALAR(NB_GC_ANY)),
    CASE(div, "div (3,5,7)/(5,7)", div, ANY(3, 5, 7), AWAY(5, 7)),
    CASE(neg, "neg (3,5,7)", neg, ANY(3, 5, 7)),
    CASE(scale, "scale (3,5,7)", scale, ANY(3, 5, 7)),
    CASE(add_scalar, "add_scalar (3,5,7)", add_scalar, ANY(3, 5, 7)),
    CASE(exp, "exp (3,5,7)", exp, ANY(3, 5, 7)),
    CASE(log, "log (3,5,7)", log, POS(3, 5, 7)),
    CASE(log1p, "log1p (3,5,7)", log1p, POS(3, 5, 7)),
    CASE(sqrt, "sqrt (3,5,7)", sqrt, POS(3, 5, 7)),
    CASE(square, "square (3,5,7)", square, ANY(3, 5, 7)),
    CASE(tanh, "tanh (3,5,7)", tanh, ANY(3, 5, 7)),
    CASE(sigmoid, "sigmoid (3,5,7)", sigmoid, ANY(3, 5, 7)),
    CASE(relu, "relu (3,5,7)", relu, AWAY(3, 5, 7)),
    CASE(softplus, "softplus (3,5,7)", softplus, ANY(3, 5, 7)),
    CASE(softplus, "softplus at |x| up to 30", softplus_wide, ANY(3, 5, 7)),
    CASE(log_sigmoid, "log_sigmoid (3,5,7)", log_sigmoid, ANY(3, 5, 7)),
    CASE(log_sigmoid, "log_sigmoid at |x| up to 30", log_sigmoid_wide, ANY(3, 5, 7)),
    {"clamp", {.label = "clamp (3,5,7) to [-0.5,0.5]", .build = b_clamp, .nin = 1,
               .in = {ANY(3, 5, 7)}, .kink = {-0.5, 0.5}, .nkink = 2}},
    CASE(where, "where (5,7) ? (3,5,7) : (7)", where, MASK(5, 7), ANY(3, 5, 7), ANY(7)),
    CASE(sum, "sum axis 1 of (3,5,7)", sum_1, ANY(3, 5, 7)),
    CASE(sum, "sum axes 0,2 keepdim", sum_02_keep, ANY(3, 5, 7)),
    CASE(sum, "sum of all", sum_all, ANY(3, 5, 7)),
    CASE(sum, "mean axis -1", mean_last, ANY(3, 5, 7)),
    CASE(logsumexp, "logsumexp axis 1", lse_1, ANY(3, 5, 7)),
    CASE(logsumexp, "logsumexp of all, keepdim", lse_all_keep, ANY(3, 5, 7)),
    CASE(logsumexp, "logsumexp of x+800 (no overflow)", lse_shifted, ANY(3, 5, 7)),
    CASE(matmul, "matmul (5,7)x(7,3)", matmul, ANY(5, 7), ANY(7, 3)),
    CASE(matmul, "matmul (3,5,7)x(7,4) shared", matmul, ANY(3, 5, 7), ANY(7, 4)),
    CASE(matmul, "matmul (2,5,7)x(2,7,3) batched", matmul, ANY(2, 5, 7), ANY(2, 7, 3)),
    CASE(matmul, "matmul (5,7)x(3,7,4) broadcast a", matmul, ANY(5, 7), ANY(3, 7, 4)),
    CASE(matmul, "matmul (7,5)T x (7,3)", matmul_ta, ANY(7, 5), ANY(7, 3)),
    CASE(matmul, "matmul (5,7) x (3,7)T", matmul_tb, ANY(5, 7), ANY(3, 7)),
    CASE(reshape, "reshape (3,5,7) to (-1,7)", reshape, ANY(3, 5, 7)),
    CASE(reshape, "reshape of a transposed view", reshape_strided, ANY(3, 5, 7)),
    CASE(permute, "permute (3,5,7) by (2,0,1)", permute, ANY(3, 5, 7)),
    CASE(slice, "slice axis 1 [1:5:2]", slice, ANY(3, 5, 7)),
    CASE(slice, "slice axis -1 [-4:-1]", slice_neg, ANY(3, 5, 7)),
    CASE(expand, "expand (5,1) to (3,5,7)", expand, ANY(5, 1)),
    CASE(contiguous, "contiguous of a transposed view", contiguous, ANY(3, 5, 7)),
    CASE(concat, "concat (3,2,7),(3,5,7) axis 1", concat1, ANY(3, 2, 7), ANY(3, 5, 7)),
    CASE(concat, "concat (3,5),(3,4) axis -1", concat_last, ANY(3, 5), ANY(3, 4)),
    CASE(mul, "fan-out: tanh(x)*exp(x)", fanout, ANY(3, 5, 7)),
    CASE(leaky_relu, "leaky_relu (3,5,7)", leaky_relu, AWAY(3, 5, 7)),
    CASE(elu, "elu (3,5,7)", elu, AWAY(3, 5, 7)),
    CASE(gelu, "gelu (3,5,7)", gelu, ANY(3, 5, 7)),
    CASE(linear, "linear (3,5)x(4,5)+(4)", linear, ANY(3, 5), ANY(4, 5), ANY(4)),
    CASE(linear, "linear with one weight used twice", linear_tied, ANY(3, 5), ANY(5, 5), ANY(5)),
    CASE(linear, "linear (2,3,5)x(4,5), no bias", linear_nobias, ANY(2, 3, 5), ANY(4, 5)),
    CASE(linear_relu, "linear with a fused ReLU (6,5)x(4,5)+(4)", linear_relu, ANY(6, 5), ANY(4, 5), ANY(4)),
    CASE(linear_relu, "linear with a fused ReLU (2,3,5)x(4,5), no bias", linear_relu_nobias, ANY(2, 3, 5), ANY(4, 5)),
    CASE_CTX(conv2d, "conv2d (2,3,7,9) k3 s2 p1", conv, &cfg_s2p1, ANY(2, 3, 7, 9), ANY(4, 3, 3, 3), ANY(4)),
    CASE_CTX(conv2d, "conv2d k(3,2) stride (1,2) pad (2,1) dilation (2,1), no bias", conv_nobias, &cfg_dil,
             ANY(2, 3, 6, 7), ANY(2, 3, 3, 2)),
    CASE_CTX(conv_transpose2d, "conv_transpose2d (2,3,4,5) k3 s2 p1 op1", deconv, &cfg_t_s2p1op1,
             ANY(2, 3, 4, 5), ANY(3, 4, 3, 3), ANY(4)),
    CASE_CTX(conv_transpose2d, "conv_transpose2d k3 s3 p1 op2", deconv, &cfg_t_s3p1op2,
             ANY(2, 3, 3, 4), ANY(3, 2, 3, 3), ANY(2)),
    CASE_CTX(conv_transpose2d, "conv_transpose2d k(3,2) stride (2,1) dilation 2, no bias", deconv_nobias,
             &cfg_t_dil, ANY(2, 3, 4, 5), ANY(3, 2, 3, 2)),
    /* a ReLU's kink is at an output, which no input domain can keep away from: these seeds draw
     * inputs that leave every output outside the difference stencil (checked by the pass) */
    CASE_SEED(conv2d, "conv2d with a fused ReLU", conv_relu, &cfg_s2p1, 1058, ANY(2, 3, 7, 9), ANY(4, 3, 3, 3), ANY(4)),
    CASE_SEED(conv_transpose2d, "conv_transpose2d with a fused ReLU", deconv_relu, &cfg_t_s2p1op1, 1059,
              ANY(2, 3, 4, 5), ANY(3, 4, 3, 3), ANY(4)),
    CASE(bce_logits, "bce_logits (3,5,7) mean", bce_mean, ANY(3, 5, 7), UNIT(3, 5, 7)),
    CASE(bce_logits, "bce_logits (3,5,7) per example", bce_none, ANY(3, 5, 7), UNIT(3, 5, 7)),
    CASE(mse, "mse (3,5,7) sum", mse_sum, ANY(3, 5, 7), ANY(3, 5, 7)),
    CASE(mse, "mse (3,5,7) per example", mse_none, ANY(3, 5, 7), ANY(3, 5, 7)),
    CASE(gaussian_nll, "gaussian_nll, logvar per element", gnll_mean, ANY(3, 5, 7), ANY(3, 5, 7), ANY(3, 5, 7)),
    CASE(gaussian_nll, "gaussian_nll, shared scalar logvar", gnll_mean, ANY(3, 5, 7), ANY(3, 5, 7),
         NB_GC_SCALAR(NB_GC_ANY)),
    CASE(gaussian_nll, "gaussian_nll, logvar per pixel (5,7), per example", gnll_none, ANY(3, 5, 7),
         ANY(3, 5, 7), ANY(5, 7)),
    CASE(kl_normal, "kl_normal (4,6) mean", kl_mean, ANY(4, 6), ANY(4, 6)),
    CASE(kl_normal, "kl_normal (4,6) per example", kl_none, ANY(4, 6), ANY(4, 6)),
    CASE(abs, "abs (3,5,7)", abs, AWAY(3, 5, 7)),
    CASE(pow, "pow (3,5,7)^2.7", pow_frac, POS(3, 5, 7)),
    CASE(pow, "pow (3,5,7)^-1.3", pow_neg, POS(3, 5, 7)),
    CASE(pow, "pow of negatives, (3,5,7)^3", pow_int, ANY(3, 5, 7)),
    CASE(maximum, "maximum (3,5,7),(3,5,7)", maximum, DISTINCT(3, 5, 7), DISTINCT(3, 5, 7)),
    CASE(maximum, "maximum (3,5,7),(5,1) broadcast", maximum, DISTINCT(3, 5, 7), DISTINCT(5, 1)),
    CASE(minimum, "minimum (3,5,7),(7)", minimum, DISTINCT(3, 5, 7), DISTINCT(7)),
    CASE(max, "max axis 1 of (3,5,7)", max_1, DISTINCT(3, 5, 7)),
    CASE(max, "max axes 0,2 keepdim", max_02_keep, DISTINCT(3, 5, 7)),
    CASE(min, "min axis -1", min_last, DISTINCT(3, 5, 7)),
    CASE(min, "min of all", min_all, DISTINCT(3, 5, 7)),
    CASE(sum, "mean of all", mean_all, ANY(3, 5, 7)),
    CASE(softmax, "softmax axis 1 of (3,5,7)", softmax_1, DISTINCT(3, 5, 7)),
    CASE(softmax, "softmax axis -1 of (4,6)", softmax_last, ANY(4, 6)),
    CASE(log_softmax, "log_softmax axis 0 of (5,7)", log_softmax_0, ANY(5, 7)),
    CASE(log_softmax, "log_softmax of 300x (no overflow)", log_softmax_wide, ANY(3, 7)),
    CASE(index_select, "index_select axis 0 of (5,7), 6 indices with repeats", index_select_0, ANY(5, 7), IDX(5, 6)),
    CASE(index_select, "index_select axis 1 of (3,5,7)", index_select_1, ANY(3, 5, 7), IDX(5, 4)),
    CASE(gather, "gather axis 1 of (3,5,7) by (3,4,7)", gather_1, ANY(3, 5, 7), IDX(5, 3, 4, 7)),
    CASE(gather, "gather axis -1 of (4,6) by (3,9)", gather_last, ANY(4, 6), IDX(6, 3, 9)),
    CASE(index_select, "codebook rows at argmin of distances (8,5)", select_argmin, ANY(5, 3),
         {.ndim = 2, .shape = {8, 5}, .dom = NB_GC_DISTINCT, .zero = 1} /* argmin passes no gradient */),
    CASE(normal_log_prob, "normal_log_prob (3,5,7), mean (5,7), logvar (7)", logpdf, ANY(3, 5, 7), ANY(5, 7), ANY(7)),
    CASE(normal_log_prob, "normal_log_prob, standard normal", logpdf_std, ANY(4, 6)),
    CASE(imq_kernel_sum, "imq_kernel_sum a (5,3), b (4,3), c (3)", imq_ab, ANY(5, 3), ANY(4, 3), POS(3)),
    CASE(imq_kernel_sum, "imq_kernel_sum of a (6,2) with itself, c (2)", imq_aa, ANY(6, 2), POS(2)),
    CASE(add, "broadcast and direct: x*w + sum_0 w", broadcast_and_direct, ANY(3, 5), ANY(3, 5)),
};

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nb_gradcheck_case c = cases[i].c;
        if (!c.seed) c.seed = 1000 + (unsigned)i;
        if (!(c.op = gc_op(cases[i].op))) {
            ok(0, "%s: no op named %s", c.label, cases[i].op);
            continue;
        }
        gc_tap(&c);
    }
    gc_coverage();
    return tap_done();
}
