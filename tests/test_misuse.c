/* tests/test_misuse.c — the library refuses misuse with a clear message, never a crash or a hang.
 *
 * Each row of the table is one mistake a user makes. It runs in a child process (so that a
 * crash is seen as a crash, not the end of the suite), under an alarm (a hang fails too). The
 * child reports the status the library returned and the message nb_last_error (or the tape's)
 * gave; the row passes when the status is the expected failure and the message holds every
 * needle it lists: the function, and what was wrong.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nabla/nabla.h"
#include "tests/tap.h"

typedef struct outcome {
    nb_status st;
    char msg[600];
} outcome;

/* Each misuse fills o: the status of the call that should refuse, and its message. */
typedef void (*misuse_fn)(outcome *o);

#define MISUSE(name) static void m_##name(outcome *o)
/* The result of a tape op: NULL expected, the tape's status and message. */
static void from_tape(outcome *o, nb_tape *tp, const nb_tensor *y)
{
    o->st = y ? NB_OK : nb_tape_status(tp);
    snprintf(o->msg, sizeof o->msg, "%s", nb_tape_error(tp));
}
/* The result of a call outside a tape: its status and nb_last_error. */
static void from_call(outcome *o, nb_status st)
{
    o->st = st;
    snprintf(o->msg, sizeof o->msg, "%s", nb_last_error());
}
#define T(tp, ...) nb_zeros(tp, NB_F32, NB_SHAPE(__VA_ARGS__))

MISUSE(null_tape)
{
    nb_tensor *y = nb_add(NULL, NULL, NULL);
    from_call(o, y ? NB_OK : NB_ERR_ARG);
}

MISUSE(null_tape_backward) { from_call(o, nb_backward(NULL, NULL)); }

MISUSE(null_tape_tensor)
{
    nb_tensor *y = nb_zeros(NULL, NB_F32, NB_SHAPE(3));
    from_call(o, y ? NB_OK : NB_ERR_ARG);
}

MISUSE(shapes)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_add(tp, T(tp, 3, 5), T(tp, 4, 5)));
}

MISUSE(dtypes)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_mul(tp, T(tp, 3), nb_zeros(tp, NB_F64, NB_SHAPE(3))));
}

MISUSE(null_input)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_exp(tp, NULL));
}

MISUSE(stale_after_reset)
{
    nb_tape *tp = nb_tape_new();
    nb_tensor *a = nb_full(tp, NB_F32, NB_SHAPE(2), 3), *b = nb_full(tp, NB_F32, NB_SHAPE(2), 7);
    nb_tape_reset(tp);
    nb_full(tp, NB_F32, NB_SHAPE(2), 4), nb_full(tp, NB_F32, NB_SHAPE(2), 10);
    from_tape(o, tp, nb_add(tp, a, b));
}

MISUSE(stale_two_steps)
{
    nb_tape *tp = nb_tape_new();
    nb_tensor *a = nb_full(tp, NB_F32, NB_SHAPE(2), 3);
    nb_tape_reset(tp);
    nb_tape_reset(tp);
    from_tape(o, tp, nb_exp(tp, a));
}

MISUSE(stale_backward)
{
    nb_tape *tp = nb_tape_new();
    nb_params *ps = nb_params_new(NB_F32);
    nb_tensor *w = nb_param(ps, "w", NB_SHAPE(2));
    nb_tensor *loss = nb_sum_all(tp, nb_mul(tp, w, w));
    nb_tape_reset(tp);
    from_call(o, nb_backward(tp, loss));
}

MISUSE(freed_tape)
{
    nb_tape *a = nb_tape_new(), *b = nb_tape_new();
    nb_tensor *x = nb_full(a, NB_F32, NB_SHAPE(2), 1);
    nb_tape_free(a);
    from_tape(o, b, nb_exp(b, x));
}

MISUSE(backward_twice)
{
    nb_tape *tp = nb_tape_new();
    nb_tensor *x = nb_requires_grad(T(tp, 2));
    nb_tensor *l = nb_sum_all(tp, nb_exp(tp, x));
    nb_backward(tp, l);
    from_call(o, nb_backward(tp, l));
}

MISUSE(backward_nonscalar)
{
    nb_tape *tp = nb_tape_new();
    from_call(o, nb_backward(tp, nb_exp(tp, nb_requires_grad(T(tp, 2, 3)))));
}

MISUSE(backward_constant)
{
    nb_tape *tp = nb_tape_new();
    from_call(o, nb_backward(tp, nb_sum_all(tp, T(tp, 2, 3))));
}

MISUSE(bad_axis)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_sum(tp, T(tp, 3, 2), NB_AXES(2), 0));
}

MISUSE(short_permutation)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_permute(tp, T(tp, 2, 3, 4), NB_AXES(1, 0)));
}

MISUSE(slice_bounds)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_slice(tp, T(tp, 3, 2), 0, 1, 5, 1));
}

MISUSE(five_dims)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_zeros(tp, NB_F32, NB_SHAPE(1, 2, 3, 4, 5)));
}

MISUSE(matmul_1d)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_matmul(tp, T(tp, 3), T(tp, 3, 4)));
}

MISUSE(linear_weight)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_linear(tp, T(tp, 8, 784), T(tp, 400, 20), NULL));
}

MISUSE(conv_flat_input)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_conv2d(tp, T(tp, 8, 784), T(tp, 32, 1, 4, 4), T(tp, 32), nb_conv(2, 1)));
}

MISUSE(conv_kernel_too_big)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_conv2d(tp, T(tp, 1, 1, 3, 3), T(tp, 2, 1, 5, 5), NULL, nb_conv(1, 0)));
}

MISUSE(index_out_of_range)
{
    nb_tape *tp = nb_tape_new();
    nb_tensor *idx = nb_tensor_from(tp, NB_F32, NB_SHAPE(2), (const float[]){0, 7}, 2);
    from_tape(o, tp, nb_index_select(tp, T(tp, 3, 2), 0, idx));
}

MISUSE(param_after_optimizer)
{
    nb_params *ps = nb_params_new(NB_F32);
    nb_param(ps, "a", NB_SHAPE(3));
    nb_optim *opt = nb_optim_new(ps, nb_optim_defaults(NB_ADAM, 1e-3));
    nb_param(ps, "b", NB_SHAPE(3));
    from_call(o, nb_optim_step(opt));
}

MISUSE(optimizer_null_store)
{
    nb_optim *opt = nb_optim_new(NULL, nb_optim_defaults(NB_SGD, 0.1));
    from_call(o, opt ? NB_OK : NB_ERR_ARG);
}

MISUSE(lr_nan)
{
    nb_params *ps = nb_params_new(NB_F32);
    nb_param(ps, "a", NB_SHAPE(3));
    nb_optim *opt = nb_optim_new(ps, nb_optim_defaults(NB_SGD, 0.1));
    from_call(o, nb_optim_set_lr(opt, 0.0 / 0.0));
}

MISUSE(duplicate_param)
{
    nb_params *ps = nb_params_new(NB_F32);
    nb_param(ps, "w", NB_SHAPE(3));
    from_call(o, nb_param(ps, "w", NB_SHAPE(3)) ? NB_OK : NB_ERR_ARG);
}

MISUSE(images_wrong_tensor)
{
    uint8_t px[2 * 6] = {0};
    nb_dataset ds = {.n = 2, .channels = 1, .rows = 2, .cols = 3, .images = px};
    float buf[10];
    nb_tensor x;
    nb_tensor_wrap(&x, NB_F32, NB_SHAPE(2, 5), buf);
    from_call(o, nb_dataset_images(&ds, (const int64_t[]){0, 1}, 2, &x, NB_BIN_NONE, NULL));
}

static nb_model small_model(nb_arch arch, nb_params **ps)
{
    nb_model m;
    nb_model_cfg cfg = nb_model_defaults();
    cfg.arch = arch;
    cfg.channels = 1, cfg.height = cfg.width = 28, cfg.nhidden = 1, cfg.hidden[0] = 8, cfg.latent = 2;
    cfg.conv1 = 4, cfg.conv2 = 4;
    *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(1);
    nb_model_init(&m, &cfg, *ps, &r);
    return m;
}

MISUSE(batch_other_images)
{
    nb_params *ps;
    nb_model m = small_model(NB_ARCH_MLP, &ps);
    uint8_t px[2 * 6] = {0};
    nb_dataset ds = {.n = 2, .channels = 1, .rows = 2, .cols = 3, .images = px};
    nb_tape *tp = nb_tape_new();
    nb_tensor *x, *y;
    from_call(o, nb_model_batch(tp, &m, &ds, (const int64_t[]){0, 1}, 2, NB_BIN_NONE, NULL, &x, &y));
}

MISUSE(encode_wrong_input)
{
    nb_params *ps;
    nb_model m = small_model(NB_ARCH_CONV, &ps);
    nb_tape *tp = nb_tape_new();
    nb_tensor *mu, *lv;
    from_call(o, nb_model_encode(tp, &m, T(tp, 8, 784), NULL, &mu, &lv));
}

MISUSE(model_latent_zero)
{
    nb_model m;
    nb_model_cfg cfg = nb_model_defaults();
    cfg.channels = 1, cfg.height = cfg.width = 28, cfg.latent = 0;
    nb_params *ps = nb_params_new(NB_F32);
    nb_rng r = nb_rng_seed(1);
    from_call(o, nb_model_init(&m, &cfg, ps, &r));
}

MISUSE(missing_file)
{
    nb_safetensors *f;
    from_call(o, nb_st_open(&f, "/nonexistent/weights.safetensors"));
}

MISUSE(garbage_file)
{
    char path[] = "/tmp/nb_misuse_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
        const char junk[] = "\x10\0\0\0\0\0\0\0{not json at all";
        if (write(fd, junk, sizeof junk - 1) < 0) o->st = NB_OK;
        close(fd);
    }
    nb_safetensors *f;
    from_call(o, nb_st_open(&f, path));
    unlink(path);
}

MISUSE(load_wrong_shape)
{
    char path[] = "/tmp/nb_misuse_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    nb_params *a = nb_params_new(NB_F32), *b = nb_params_new(NB_F32);
    nb_param(a, "w", NB_SHAPE(3, 4));
    nb_param(b, "w", NB_SHAPE(4, 3));
    nb_status st = nb_params_save(a, path, 0, NULL, NULL);
    from_call(o, st ? NB_OK : nb_params_load(b, path));
    unlink(path);
}

MISUSE(missing_data)
{
    nb_dataset ds;
    from_call(o, nb_dataset_load(&ds, "/nonexistent/data", "train"));
}

MISUSE(bad_config_key)
{
    nb_train_cfg c = nb_train_defaults();
    from_call(o, nb_train_set(&c, "learning-rate", "0.1"));
}

MISUSE(randn_without_generator)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_randn(tp, NULL, NB_F32, NB_SHAPE(3)));
}

MISUSE(tensor_from_null)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_tensor_from(tp, NB_F32, NB_SHAPE(3), NULL, 3));
}

MISUSE(tensor_from_short)
{
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_tensor_from(tp, NB_F32, NB_SHAPE(2, 3), (const float[]){1, 2, 3}, 3));
}

MISUSE(copy_out_short)
{
    nb_tape *tp = nb_tape_new();
    float dst[2];
    from_call(o, nb_copy_out(nb_zeros(tp, NB_F32, NB_SHAPE(5)), dst, 2));
}

MISUSE(op_without_forward)
{
    static const nb_op_def broken = {.name = "broken"};
    nb_tape *tp = nb_tape_new();
    from_tape(o, tp, nb_op_apply(tp, &broken, &(nb_node){.nin = 1, .in = {T(tp, 2)}}));
}

MISUSE(gradcheck_no_build)
{
    nb_gradcheck_case c = {.label = "nothing", .nin = 1, .in = {NB_GC_IN(NB_GC_ANY, 3)}};
    nb_gradcheck_result r;
    from_call(o, nb_gradcheck(&c, &r));
}

static const struct {
    const char *what;
    misuse_fn fn;
    nb_status want;
    const char *needle[2];
} table[] = {
    {"an op on a NULL tape", m_null_tape, NB_ERR_ARG, {"nb_add", "tape is NULL"}},
    {"backward on a NULL tape", m_null_tape_backward, NB_ERR_ARG, {"nb_backward", "tape is NULL"}},
    {"a tensor on a NULL tape", m_null_tape_tensor, NB_ERR_ARG, {"nb_zeros", "tape is NULL"}},
    {"shapes that do not broadcast", m_shapes, NB_ERR_SHAPE, {"nb_add", "(3,5) and (4,5)"}},
    {"mixed dtypes", m_dtypes, NB_ERR_DTYPE, {"nb_mul", "f32 and f64"}},
    {"a NULL input", m_null_input, NB_ERR_ARG, {"nb_exp", "input 1 is NULL"}},
    {"a tensor kept past nb_tape_reset", m_stale_after_reset, NB_ERR_STATE, {"nb_add", "input 1 is from a step that has ended"}},
    {"a tensor kept past two resets", m_stale_two_steps, NB_ERR_STATE, {"nb_exp", "step that has ended"}},
    {"backward from a loss of an ended step", m_stale_backward, NB_ERR_STATE, {"nb_backward", "step that has ended"}},
    {"a tensor of a freed tape", m_freed_tape, NB_ERR_STATE, {"nb_exp", "freed"}},
    {"backward twice", m_backward_twice, NB_ERR_STATE, {"nb_backward", "twice"}},
    {"backward from a non-scalar", m_backward_nonscalar, NB_ERR_SHAPE, {"nb_backward", "must be a scalar"}},
    {"backward from a constant", m_backward_constant, NB_ERR_ARG, {"nb_backward", "requires a gradient"}},
    {"an axis out of range", m_bad_axis, NB_ERR_ARG, {"nb_sum", "axis 2 out of range for shape (3,2)"}},
    {"a permutation shorter than the dims", m_short_permutation, NB_ERR_ARG, {"nb_permute", "2 dims for the 3 dims"}},
    {"a slice out of bounds", m_slice_bounds, NB_ERR_ARG, {"nb_slice", "[1, 5) out of bounds"}},
    {"a 5-D tensor", m_five_dims, NB_ERR_SHAPE, {"nb_zeros", "5 dims"}},
    {"matmul of a vector", m_matmul_1d, NB_ERR_SHAPE, {"nb_matmul", "2-D or 3-D"}},
    {"a Linear weight of the wrong shape", m_linear_weight, NB_ERR_SHAPE, {"nb_linear", "weight (400,20)"}},
    {"a conv layer given flat images", m_conv_flat_input, NB_ERR_SHAPE, {"nb_conv2d", "input (8,784)"}},
    {"a kernel larger than the image", m_conv_kernel_too_big, NB_ERR_SHAPE, {"nb_conv2d", "no valid output"}},
    {"an index out of range", m_index_out_of_range, NB_ERR_ARG, {"nb_index_select", "index 7"}},
    {"a parameter added after the optimizer", m_param_after_optimizer, NB_ERR_STATE, {"optimizer", "registered after"}},
    {"an optimizer over no store", m_optimizer_null_store, NB_ERR_ARG, {"nb_optim_new", "NULL"}},
    {"a NaN learning rate", m_lr_nan, NB_ERR_ARG, {"nb_optim_set_lr", "nan"}},
    {"a parameter name taken twice", m_duplicate_param, NB_ERR_ARG, {"nb_param", "'w' is already registered"}},
    {"images into a tensor of the wrong size", m_images_wrong_tensor, NB_ERR_SHAPE, {"nb_dataset_images", "(2,5)"}},
    {"a batch of images of another size", m_batch_other_images, NB_ERR_SHAPE, {"nb_model_batch", "1x28x28"}},
    {"flat images into a conv model", m_encode_wrong_input, NB_ERR_SHAPE, {"conv", "input (8,784), want (8,1,28,28)"}},
    {"a model with no latent dims", m_model_latent_zero, NB_ERR_ARG, {"latent", "0"}},
    {"a missing parameter file", m_missing_file, NB_ERR_IO, {"/nonexistent/weights.safetensors", ""}},
    {"a parameter file that is not safetensors", m_garbage_file, NB_ERR_FORMAT, {"nb_misuse_", ""}},
    {"loading into a parameter of another shape", m_load_wrong_shape, NB_ERR_SHAPE, {"'w'", "(3,4)"}},
    {"a missing data directory", m_missing_data, NB_ERR_IO, {"/nonexistent/data", "train-images"}},
    {"a configuration key that does not exist", m_bad_config_key, NB_ERR_ARG, {"learning-rate", ""}},
    {"random numbers without a generator", m_randn_without_generator, NB_ERR_ARG, {"nb_randn", "generator is NULL"}},
    {"a tensor from a NULL source", m_tensor_from_null, NB_ERR_ARG, {"nb_tensor_from", "NULL"}},
    {"a source array shorter than the shape", m_tensor_from_short, NB_ERR_ARG, {"nb_tensor_from", "3 values for shape (2,3)"}},
    {"a destination shorter than the tensor", m_copy_out_short, NB_ERR_ARG, {"nb_copy_out", "room for 2 values"}},
    {"an op descriptor without a forward", m_op_without_forward, NB_ERR_ARG, {"nb_broken", "no forward"}},
    {"a gradient check without a computation", m_gradcheck_no_build, NB_ERR_ARG, {"nb_gradcheck", "no build function"}},
};

int main(void)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        int fds[2];
        if (pipe(fds)) return 1;
        fflush(stdout);
        const pid_t pid = fork();
        if (pid == 0) { /* the child: make the mistake, report what the library said */
            close(fds[0]);
            alarm(20);
            outcome o = {.st = NB_OK};
            table[i].fn(&o);
            if (write(fds[1], &o, sizeof o) != (ssize_t)sizeof o) _exit(3);
            _exit(0);
        }
        close(fds[1]);
        outcome o = {.st = NB_OK};
        const ssize_t got = read(fds[0], &o, sizeof o);
        close(fds[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        const int crashed = !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != (ssize_t)sizeof o;
        o.msg[sizeof o.msg - 1] = 0;
        const int said = strstr(o.msg, table[i].needle[0]) && strstr(o.msg, table[i].needle[1]);
        if (crashed)
            ok(0, "%s: the child %s (signal %d)", table[i].what, WIFSIGNALED(status) ? "crashed" : "failed",
               WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        else
            ok(o.st == table[i].want && said, "%s: %s (%s) \"%s\"", table[i].what,
               o.st == table[i].want ? "refused" : "WRONG STATUS", nb_status_str(o.st), o.msg);
    }
    return tap_done();
}
