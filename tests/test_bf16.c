/* tests/test_bf16.c — bf16 precision: Linear, Conv2d and ConvTranspose2d products on bf16 inputs
 * with f32 accumulation agree with f32 to bf16's rounding, values and gradients; a CPU without
 * bf16 arithmetic (oneDNN capped to AVX-512 core) refuses it with a clear error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nabla/nabla.h"
#include "nn/dnnl_mm.h"
#include "tests/tap.h"

/* max |a - b| / max |b| */
static double rel(const nb_tensor *a, const nb_tensor *b)
{
    double d = 0, m = 0;
    for (int64_t i = 0; a && b && i < nb_numel(b); i++) {
        d = fmax(d, fabs(nb_get(a, i) - nb_get(b, i)));
        m = fmax(m, fabs(nb_get(b, i)));
    }
    return a && b && m > 0 ? d / m : INFINITY;
}

typedef nb_tensor *(*layer_fn)(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b);
static nb_tensor *lin(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b) { return nb_linear(tp, x, w, b); }
static nb_tensor *conv(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b) { return nb_conv2d(tp, x, w, b, nb_conv(2, 1)); }
static nb_tensor *deconv(nb_tape *tp, nb_tensor *x, nb_tensor *w, nb_tensor *b)
{
    return nb_conv_transpose2d(tp, x, w, b, nb_conv(2, 1));
}

/* The layer in one precision: output, and the gradients of Σ u·y for x, w and b (copied out). */
static void run(nb_precision p, layer_fn f, const int64_t *xs, int xn, const int64_t *ws, int wn, int64_t bn,
                double *out[4], int64_t n[4])
{
    nb_tape *tp = nb_tape_new();
    nb_tape_set_precision(tp, p);
    nb_rng r = nb_rng_seed(3);
    nb_tensor *x = nb_requires_grad(nb_uniform(tp, &r, NB_F32, xn, xs, -1, 1));
    nb_tensor *w = nb_requires_grad(nb_uniform(tp, &r, NB_F32, wn, ws, -0.3, 0.3));
    nb_tensor *b = nb_requires_grad(nb_uniform(tp, &r, NB_F32, 1, &bn, -0.3, 0.3));
    nb_tensor *y = f(tp, x, w, b);
    nb_tensor *u = y ? nb_uniform(tp, &r, NB_F32, y->ndim, y->shape, -1, 1) : NULL;
    nb_backward(tp, nb_sum_all(tp, nb_mul(tp, y, u)));
    nb_tensor *t[4] = {y, x->grad, w->grad, b->grad};
    for (int i = 0; i < 4; i++) {
        n[i] = t[i] ? nb_numel(t[i]) : 0;
        out[i] = calloc((size_t)n[i] + 1, sizeof(double));
        for (int64_t j = 0; j < n[i]; j++) out[i][j] = nb_get(t[i], j);
    }
    nb_tape_free(tp);
}

static void compare(const char *label, layer_fn f, const int64_t *xs, int xn, const int64_t *ws, int wn, int64_t bn)
{
    double *a[4], *b[4];
    int64_t na[4], nbb[4];
    run(NB_PREC_F32, f, xs, xn, ws, wn, bn, a, na);
    run(NB_PREC_BF16, f, xs, xn, ws, wn, bn, b, nbb);
    const char *what[4] = {"output", "d/dx", "d/dw", "d/db"};
    for (int i = 0; i < 4; i++) {
        nb_tensor ta, tb;
        nb_tensor_wrap(&ta, NB_F64, 1, &na[i], a[i]);
        nb_tensor_wrap(&tb, NB_F64, 1, &nbb[i], b[i]);
        const double e = na[i] == nbb[i] && na[i] ? rel(&tb, &ta) : INFINITY;
        /* bf16 keeps 8 significant bits: a product of rounded inputs is off by ~2^-8, sums of
         * such terms partly cancel; 2% of the largest value bounds it with room */
        /* the output must differ: bf16 did run (a bias gradient is a plain f32 sum in Linear) */
        ok(e < 2e-2 && (i || e > 0), "%s in bf16: %s within %.1e of f32 (relative to its largest value)", label, what[i], e);
        free(a[i]), free(b[i]);
    }
}

/* Round to nearest even on the sign-magnitude bits: the next bf16 up in magnitude when the
 * dropped half exceeds half an ulp or ties with an odd last bit; a NaN stays a quiet NaN. */
static uint16_t ref_bf16(uint32_t u)
{
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    const uint32_t rest = u & 0xffffu;
    uint16_t t = (uint16_t)(u >> 16);
    if (rest > 0x8000u || (rest == 0x8000u && (t & 1))) t++;
    return t;
}

/* every bit pattern class: random words, ties both ways, the edges of the range, NaN, inf */
static void test_rounding(void)
{
    enum { N = 40000 };
    static float x[N], y[N];
    static uint16_t h[N], hr[N];
    static const uint32_t edge[] = {0, 0x80000000u, 0x00000001u, 0x00008000u, 0x00018000u, 0x3f808000u,
                                    0x3f818000u, 0x3f80ffffu, 0x7f7fffffu, 0x7f7f8000u, 0x7f800000u,
                                    0xff800000u, 0x7fc00000u, 0x7f800001u, 0xff812345u, 0xbf7fffffu};
    uint64_t st = 99;
    int bad = 0, bad_relu = 0;
    for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005u + 1442695040888963407u;
        uint32_t u = i < (int)(sizeof edge / sizeof *edge) ? edge[i] : (uint32_t)(st >> 32);
        if (i % 7 == 3) u = (u & 0xffff0000u) | 0x8000u; /* a tie */
        memcpy(&x[i], &u, 4);
    }
    nb__to_bf16(x, h, N);
    for (int i = 0; i < N; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        bad += h[i] != ref_bf16(u);
    }
    ok(bad == 0, "f32 -> bf16 rounds to nearest even, NaN quiet, overflow to inf (%d of %d differ)", bad, N);
    memcpy(y, x, sizeof y);
    nb__relu_to_bf16(y, hr, N);
    for (int i = 0; i < N; i++) {
        const float want = x[i] < 0 ? 0 : x[i];
        uint32_t u;
        memcpy(&u, &want, 4);
        bad_relu += memcmp(&y[i], &want, 4) || hr[i] != ref_bf16(u);
    }
    ok(bad_relu == 0, "ReLU and its bf16 rounding in one pass: as the ReLU, then the rounding (%d differ)", bad_relu);
}

/* A hidden layer with a fused ReLU read by two heads (an encoder's mean and log-variance):
 * the outputs, then the gradients of Σ u·y of both heads for x, the weights and the biases,
 * into v; the inputs (x, w1, b1, w2, w3, u1, u2, b2) into in when it is not NULL. */
enum { CH_B = 32, CH_I = 50, CH_H = 40, CH_O = 6 };
enum { CH_OUT = 2 * CH_B * CH_O + CH_B * CH_I + CH_H * CH_I + CH_H + 2 * CH_O * CH_H + CH_O,
       CH_IN = CH_B * CH_I + CH_H * CH_I + CH_H + 2 * CH_O * CH_H + 2 * CH_B * CH_O + CH_O };
static int64_t chain(nb_tape *tp, nb_precision p, uint64_t seed, double *v, double *in)
{
    nb_tape_set_precision(tp, p);
    nb_rng r = nb_rng_seed(seed);
    nb_tensor *x = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(CH_B, CH_I), -1, 1));
    nb_tensor *w1 = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(CH_H, CH_I), -0.3, 0.3));
    nb_tensor *b1 = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(CH_H), -0.3, 0.3));
    nb_tensor *w2 = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(CH_O, CH_H), -0.3, 0.3));
    nb_tensor *w3 = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(CH_O, CH_H), -0.3, 0.3));
    nb_tensor *b2 = nb_requires_grad(nb_uniform(tp, &r, NB_F32, NB_SHAPE(CH_O), -0.3, 0.3));
    nb_tensor *h = nb_linear_relu(tp, x, w1, b1);
    nb_tensor *y1 = nb_linear(tp, h, w2, b2), *y2 = nb_linear(tp, h, w3, NULL);
    nb_tensor *u1 = nb_uniform(tp, &r, NB_F32, NB_SHAPE(CH_B, CH_O), -1, 1);
    nb_tensor *u2 = nb_uniform(tp, &r, NB_F32, NB_SHAPE(CH_B, CH_O), -1, 1);
    nb_backward(tp, nb_add(tp, nb_sum_all(tp, nb_mul(tp, y1, u1)), nb_sum_all(tp, nb_mul(tp, y2, u2))));
    nb_tensor *t[8] = {y1, y2, x->grad, w1->grad, b1->grad, w2->grad, w3->grad, b2->grad},
              *i8[8] = {x, w1, b1, w2, w3, u1, u2, b2};
    int64_t k = 0;
    for (int i = 0; i < 8; i++)
        for (int64_t j = 0; t[i] && j < nb_numel(t[i]); j++) v[k++] = nb_get(t[i], j);
    for (int i = 0, m = 0; in && i < 8; i++)
        for (int64_t j = 0; j < nb_numel(i8[i]); j++) in[m++] = nb_get(i8[i], j);
    return k;
}

/* f32 to bf16 and back: round to nearest even */
static double bf(double d)
{
    float f = (float)d;
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1)) & 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* The chain on bf16-rounded operands, in double: what the bf16 path computes up to its f32 sums. */
static void chain_ref(const double *in, double *v)
{
    const double *x = in, *w1 = x + CH_B * CH_I, *b1 = w1 + CH_H * CH_I, *w[2] = {b1 + CH_H, b1 + CH_H + CH_O * CH_H},
                 *u[2] = {w[1] + CH_O * CH_H, w[1] + CH_O * CH_H + CH_B * CH_O}, *b2 = u[1] + CH_B * CH_O;
    static double h[CH_B][CH_H], gh[CH_B][CH_H];
    double *y[2] = {v, v + CH_B * CH_O}, *gx = v + 2 * CH_B * CH_O, *gw1 = gx + CH_B * CH_I, *gb1 = gw1 + CH_H * CH_I,
           *gw[2] = {gb1 + CH_H, gb1 + CH_H + CH_O * CH_H}, *gb2 = gw[1] + CH_O * CH_H;
    memset(v, 0, CH_OUT * sizeof *v);
    memset(gh, 0, sizeof gh);
    for (int b = 0; b < CH_B; b++)
        for (int j = 0; j < CH_H; j++) {
            double s = b1[j];
            for (int i = 0; i < CH_I; i++) s += bf(x[b * CH_I + i]) * bf(w1[j * CH_I + i]);
            h[b][j] = s > 0 ? s : 0;
        }
    for (int k = 0; k < 2; k++)
        for (int b = 0; b < CH_B; b++)
            for (int o = 0; o < CH_O; o++) {
                y[k][b * CH_O + o] = k ? 0 : b2[o];
                for (int j = 0; j < CH_H; j++) y[k][b * CH_O + o] += bf(h[b][j]) * bf(w[k][o * CH_H + j]);
                if (!k) gb2[o] += u[k][b * CH_O + o];
                const double g = bf(u[k][b * CH_O + o]); /* dy = u, rounded */
                for (int j = 0; j < CH_H; j++) {
                    gh[b][j] += g * bf(w[k][o * CH_H + j]);
                    gw[k][o * CH_H + j] += g * bf(h[b][j]);
                }
            }
    for (int b = 0; b < CH_B; b++)
        for (int j = 0; j < CH_H; j++) {
            const double g = h[b][j] > 0 ? gh[b][j] : 0;
            gb1[j] += g; /* the bias sums the f32 gradient */
            for (int i = 0; i < CH_I; i++) {
                gx[b * CH_I + i] += bf(g) * bf(w1[j * CH_I + i]);
                gw1[j * CH_I + i] += bf(g) * bf(x[b * CH_I + i]);
            }
        }
}

static void test_chain(void)
{
    static double f[CH_OUT], h[CH_OUT], ref[CH_OUT], in[CH_IN], again[CH_OUT], fresh[CH_OUT];
    nb_tape *tp = nb_tape_new();
    const int64_t nf = chain(tp, NB_PREC_F32, 5, f, NULL);
    nb_tape_reset(tp);
    const int64_t nh = chain(tp, NB_PREC_BF16, 5, h, in);
    chain_ref(in, ref);
    nb_tensor tf, th, tr;
    nb_tensor_wrap(&tf, NB_F64, 1, (const int64_t[]){CH_B * CH_O}, f);
    nb_tensor_wrap(&th, NB_F64, 1, (const int64_t[]){CH_B * CH_O}, h);
    const double ey = rel(&th, &tf);
    ok(nf == CH_OUT && nh == CH_OUT && ey < 2e-2 && ey > 0, "ReLU layer and two heads in bf16: output within %.1e of f32", ey);
    /* gradients: a pre-activation near 0 can change sides when rounded, so f32 is no reference
     * for them; the same sums on the rounded operands are */
    nb_tensor_wrap(&th, NB_F64, 1, (const int64_t[]){CH_OUT}, h);
    nb_tensor_wrap(&tr, NB_F64, 1, (const int64_t[]){CH_OUT}, ref);
    const double e = rel(&th, &tr);
    ok(e < 1e-5, "ReLU layer and two heads in bf16: outputs and gradients within %.1e of the sums on "
       "bf16-rounded operands", e);
    /* the next step's tensors sit at this step's addresses: a rounding kept from this step must
     * not be taken for theirs */
    nb_tape_reset(tp);
    chain(tp, NB_PREC_BF16, 6, again, NULL);
    nb_tape_free(tp);
    tp = nb_tape_new();
    chain(tp, NB_PREC_BF16, 6, fresh, NULL);
    nb_tape_free(tp);
    ok(!memcmp(again, fresh, sizeof fresh), "bf16 on a reused tape equals a fresh tape bit for bit");
}

/* Run as `test_bf16 capped` under ONEDNN_MAX_CPU_ISA=AVX512_CORE: oneDNN reads the cap once,
 * at its first call, so the check needs a fresh process. */
static int capped(void)
{
    nb_tape *tp = nb_tape_new();
    const nb_status st = nb_tape_set_precision(tp, NB_PREC_BF16);
    const int refused = st == NB_ERR_BACKEND && strstr(nb_last_error(), "no bf16") && nb_tape_precision(tp) == NB_PREC_F32;
    nb_tape_free(tp);
    return !refused;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "capped")) return capped();
    test_rounding(); /* plain C: on any CPU */
    if (!nb_cpu_bf16()) {
        ok(1, "# SKIP this CPU has no bf16 arithmetic");
    } else {
        compare("Linear (64,300)->(64,200)", lin, (const int64_t[]){64, 300}, 2, (const int64_t[]){200, 300}, 2, 200);
        compare("Conv2d 3->8, 12x12, k4 s2 p1", conv, (const int64_t[]){4, 3, 12, 12}, 4,
                (const int64_t[]){8, 3, 4, 4}, 4, 8);
        compare("ConvTranspose2d 8->2, 6x6, k4 s2 p1", deconv, (const int64_t[]){4, 8, 6, 6}, 4,
                (const int64_t[]){8, 2, 4, 4}, 4, 2);
        test_chain();
        nb_tape *tp = nb_tape_new();
        ok(nb_tape_set_precision(tp, NB_PREC_BF16) == NB_OK && nb_tape_precision(tp) == NB_PREC_BF16,
           "the tape takes bf16 on this CPU");
        nb_tape_free(tp);
    }
    /* a CPU without bf16, as oneDNN's ISA cap makes it: the request is refused, not ignored */
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE", 1);
        execl("/proc/self/exe", argv[0], "capped", (char *)NULL);
        _exit(127);
    }
    int status = 1;
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "without bf16 arithmetic, bf16 precision is refused with a message");
    return tap_done();
}
