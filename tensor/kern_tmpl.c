/* tensor/kern_tmpl.c — every row kernel of tensor/ew.def, compiled once per (dtype, ISA).
 *
 * Meson builds this file six times: -DNB_TMPL_F64=0|1 × -DNB_ISA_ID=0 (ref), 1 (avx2), 2 (avx512).
 * The loops are the same in every build; the reference build is plain scalar C over libm and is
 * the definition of each kernel. The SIMD builds are compiled with -mavx2/-mavx512f, so the
 * arithmetic loops are vectorised by the compiler, and the transcendentals (exp, log, log1p,
 * tanh and what is built from them) go through SLEEF's vector functions via the V* macros.
 * tests/test_kernels.c checks each SIMD build against the reference.
 */
#include <math.h>
#include <string.h>

#include "tensor/kernels.h"

#define LOG_2PI 1.8378770664093454836
#define INV_SQRT_2PI 0.39894228040143267794

#if NB_TMPL_F64
typedef double real;
#define DT f64
#define SSQRT sqrt
#define SFABS fabs
#define LOG1P_MAX 1e307
#else
typedef float real;
#define DT f32
#define SSQRT sqrtf
#define SFABS fabsf
#define LOG1P_MAX 1e38f
#endif

#if NB_ISA_ID == 0
#define ISA ref
#define VL 1
typedef real vec;
#define VSEL_GT(x, t, a, b) ((x) > (t) ? (b) : (a))
#define VEQ_MASK(x, t) ((unsigned)((x) == (t))) /* bit j: lane j equals t */
#if NB_TMPL_F64
#define VEXP exp
#define VLOG log
#define VLOG1P log1p
#define VEXPM1 expm1
#define VERFC erfc
#define VTANH tanh
#define VSQRT sqrt
#define VSINCOS(t, sn, cs) ((sn) = sin(t), (cs) = cos(t))
#define VPOW pow
#define VABS fabs
#define VMAX fmax
#define VMIN fmin
#define VMAX_FAST VMAX /* the max and min of finite lanes */
#define VMIN_FAST VMIN
#else
#define VEXP expf
#define VLOG logf
#define VLOG1P log1pf
#define VEXPM1 expm1f
#define VERFC erfcf
#define VTANH tanhf
#define VPOW powf
#define VABS fabsf
#define VMAX fmaxf
#define VMIN fminf
#define VMAX_FAST VMAX /* the max and min of finite lanes */
#define VMIN_FAST VMIN
#endif

#else /* SIMD: sleef.h declares the vector API only when the ISA macros are on. */
#include <immintrin.h>
#include <sleef.h>
#if NB_ISA_ID == 1
#define ISA avx2
#if NB_TMPL_F64
#define VL 4
typedef __m256d vec;
#define VEXP Sleef_expd4_u10avx2
#define VLOG Sleef_logd4_u10avx2
#define VLOG1P Sleef_log1pd4_u10avx2
#define VEXPM1 Sleef_expm1d4_u10avx2
#define VERFC Sleef_erfcd4_u15avx2
#define VTANH Sleef_tanhd4_u10avx2
#define VSQRT _mm256_sqrt_pd
#define VSINCOS(t, sn, cs) do { Sleef___m256d_2 r_ = Sleef_sincosd4_u10avx2(t); (sn) = r_.x, (cs) = r_.y; } while (0)
#define VPOW Sleef_powd4_u10avx2
#define VABS Sleef_fabsd4_avx2
#define VMAX Sleef_fmaxd4_avx2
#define VMIN Sleef_fmind4_avx2
#define VMAX_FAST _mm256_max_pd /* the max and min of finite lanes */
#define VMIN_FAST _mm256_min_pd
#define VSEL_GT(x, t, a, b) _mm256_blendv_pd(a, b, _mm256_cmp_pd(x, _mm256_set1_pd(t), _CMP_GT_OQ))
#define VEQ_MASK(x, t) ((unsigned)_mm256_movemask_pd(_mm256_cmp_pd(x, _mm256_set1_pd(t), _CMP_EQ_OQ)))
#else
#define VL 8
typedef __m256 vec;
#define VEXP Sleef_expf8_u10avx2
#define VLOG Sleef_logf8_u10avx2
#define VLOG1P Sleef_log1pf8_u10avx2
#define VEXPM1 Sleef_expm1f8_u10avx2
#define VERFC Sleef_erfcf8_u15avx2
#define VCOPYSIGN Sleef_copysignf8_avx2
#define VPOW Sleef_powf8_u10avx2
#define VABS Sleef_fabsf8_avx2
#define VMAX Sleef_fmaxf8_avx2
#define VMIN Sleef_fminf8_avx2
#define VMAX_FAST _mm256_max_ps /* the max and min of finite lanes */
#define VMIN_FAST _mm256_min_ps
#define VSEL_GT(x, t, a, b) _mm256_blendv_ps(a, b, _mm256_cmp_ps(x, _mm256_set1_ps(t), _CMP_GT_OQ))
#define VEQ_MASK(x, t) ((unsigned)_mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_set1_ps(t), _CMP_EQ_OQ)))
#define VFMA _mm256_fmadd_ps
#endif
#elif NB_ISA_ID == 2
#define ISA avx512
#if NB_TMPL_F64
#define VL 8
typedef __m512d vec;
#define VEXP Sleef_expd8_u10avx512f
#define VLOG Sleef_logd8_u10avx512f
#define VLOG1P Sleef_log1pd8_u10avx512f
#define VEXPM1 Sleef_expm1d8_u10avx512f
#define VERFC Sleef_erfcd8_u15avx512f
#define VTANH Sleef_tanhd8_u10avx512f
#define VSQRT _mm512_sqrt_pd
#define VSINCOS(t, sn, cs) do { Sleef___m512d_2 r_ = Sleef_sincosd8_u10avx512f(t); (sn) = r_.x, (cs) = r_.y; } while (0)
#define VPOW Sleef_powd8_u10avx512f
#define VABS Sleef_fabsd8_avx512f
#define VMAX Sleef_fmaxd8_avx512f
#define VMIN Sleef_fmind8_avx512f
#define VMAX_FAST _mm512_max_pd /* the max and min of finite lanes */
#define VMIN_FAST _mm512_min_pd
#define VSEL_GT(x, t, a, b) _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, _mm512_set1_pd(t), _CMP_GT_OQ), a, b)
#define VEQ_MASK(x, t) ((unsigned)_mm512_cmp_pd_mask(x, _mm512_set1_pd(t), _CMP_EQ_OQ))
#else
#define VL 16
typedef __m512 vec;
#define VEXP Sleef_expf16_u10avx512f
#define VLOG Sleef_logf16_u10avx512f
#define VLOG1P Sleef_log1pf16_u10avx512f
#define VEXPM1 Sleef_expm1f16_u10avx512f
#define VERFC Sleef_erfcf16_u15avx512f
#define VCOPYSIGN Sleef_copysignf16_avx512f
#define VPOW Sleef_powf16_u10avx512f
#define VABS Sleef_fabsf16_avx512f
#define VMAX Sleef_fmaxf16_avx512f
#define VMIN Sleef_fminf16_avx512f
#define VMAX_FAST _mm512_max_ps /* the max and min of finite lanes */
#define VMIN_FAST _mm512_min_ps
#define VSEL_GT(x, t, a, b) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(t), _CMP_GT_OQ), a, b)
#define VEQ_MASK(x, t) ((unsigned)_mm512_cmp_ps_mask(x, _mm512_set1_ps(t), _CMP_EQ_OQ))
#define VFMA _mm512_fmadd_ps
#endif
#else
#error "NB_ISA_ID must be 0, 1 or 2"
#endif
#endif

/* Loops bound by the divide and square-root unit run on 256-bit vectors: on Zen 4 a 512-bit
 * vsqrtps or vdivps costs more than two 256-bit ones (1 thread, f32: Adam over 645k values 0.67
 * ms in zmm, 0.38 in ymm; a division of 1M 0.49 against 0.37-0.43, a square root 0.29 against
 * 0.22-0.24), and on Intel's cores both widths compute as many lanes a cycle. Where SLEEF's
 * polynomials dominate (the sigmoid's one division), zmm stays ahead. */
#if NB_ISA_ID == 2
#define DIVIDER_BOUND __attribute__((target("prefer-vector-width=256")))
#else
#define DIVIDER_BOUND
#endif

#define CAT3_(a, b, c) a##b##c
#define CAT3(a, b, c) CAT3_(a, b, c)
#define FILL_FN CAT3(nb_kernels_fill_, ISA, CAT3(_, DT, ))
#define STR_(x) #x
#define STR(x) STR_(x)

static inline vec vld(const real *p)
{
    vec v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void vst(real *p, vec v) { memcpy(p, &v, sizeof v); }

static const vec vzero; /* all lanes 0 */

/* The transcendental kernels run over vectors of VL lanes (VL = 1 in the reference). The tail
 * goes through a zero-padded buffer, so an element's result never depends on its position. */
#define MAP(LOAD_Y, EXPR)                                                                    \
    do {                                                                                     \
        int64_t i_ = 0;                                                                      \
        for (; i_ + VL <= n; i_ += VL) {                                                     \
            vec x = vld(a + i_), u = b ? vld(b + i_) : vzero, w = c ? vld(c + i_) : vzero;   \
            vec yv = LOAD_Y ? vld(y + i_) : vzero;                                           \
            (void)u, (void)w, (void)yv;                                                      \
            vst(y + i_, EXPR);                                                               \
        }                                                                                    \
        if (i_ < n) {                                                                        \
            real ta[VL] = {0}, tb[VL] = {0}, tc[VL] = {0}, ty[VL] = {0};                     \
            size_t rest_ = (size_t)(n - i_) * sizeof(real);                                  \
            memcpy(ta, a + i_, rest_);                                                       \
            if (b) memcpy(tb, b + i_, rest_);                                                \
            if (c) memcpy(tc, c + i_, rest_);                                                \
            if (LOAD_Y) memcpy(ty, y + i_, rest_);                                           \
            vec x = vld(ta), u = vld(tb), w = vld(tc), yv = vld(ty);                         \
            (void)u, (void)w, (void)yv;                                                      \
            vst(ty, EXPR);                                                                   \
            memcpy(y + i_, ty, rest_);                                                       \
        }                                                                                    \
    } while (0)

#define KERNEL(id)                                                                           \
    static void k_##id(int64_t n, void *Y, const void *A,                  \
                       const void *B, const void *C, const double *s)
#define ARGS                                                                                 \
    real *y = Y;                                                                             \
    const real *a = A, *b = B, *c = C;                                                       \
    (void)a, (void)b, (void)c, (void)s
#define LOOP for (int64_t i = 0; i < n; i++)

#if NB_ISA_ID == 0
/* the reference is libm's log1p, nothing more */
static inline vec v_log1p(vec x) { return VLOG1P(x); }
#else
/* SLEEF's log1p is specified on [-1, LOG1P_MAX] and returns inf above it; there log(x) equals
 * log1p(x) to the last bit. */
static inline vec v_log1p(vec x) { return VSEL_GT(x, LOG1P_MAX, VLOG1P(x), VLOG(x)); }
#endif
static inline vec v_sigmoid(vec x) { return (real)1 / ((real)1 + VEXP(-x)); }
/* log1p(e) for e = exp(-|x|) in (0, 1]: log(1 + exp(-|x|)) never overflows; softplus and
 * log-sigmoid add the linear part back, and BCE's two-output kernel shares e with σ. */
#if NB_ISA_ID == 0 || NB_TMPL_F64
static inline vec v_log1p_small(vec e) { return VLOG1P(e); }
#else
/* In f32, log1p of e = exp(-|x|) in (0, 1] as 2·atanh(s), s = e / (2 + e) in (0, 1/3]: the odd
 * series 2s + 2s·s²(1/3 + s²/5 + ... + s¹²/15) leaves under 2^-28 relative, with no range
 * reduction, and its leading term 2s carries the rounding. SLEEF's log1pf covers all of
 * [-1, inf) in double-float arithmetic and was a tenth of an importance-sampling run. */
static inline vec v_log1p_small(vec e)
{
    const vec t = (real)2 * (e / ((real)2 + e)), s2 = (real)0.25 * t * t;
    vec q = vzero + (real)(1.0 / 15);
    q = VFMA(q, s2, vzero + (real)(1.0 / 13));
    q = VFMA(q, s2, vzero + (real)(1.0 / 11));
    q = VFMA(q, s2, vzero + (real)(1.0 / 9));
    q = VFMA(q, s2, vzero + (real)(1.0 / 7));
    q = VFMA(q, s2, vzero + (real)(1.0 / 5));
    q = VFMA(q, s2, vzero + (real)(1.0 / 3));
    return VFMA(t * s2, q, t);
}
#endif
/* tanh in f32: SLEEF's tanhf computes in double-float arithmetic and cost 2.5 ns an element,
 * five exps, and a tenth of the two-layer VAE's step. Below |x| = 0.98 an odd polynomial
 * (least-squares fit of (tanh x − x) / x³ in x², 3e-9 relative); above, 1 − 2 / (e^2|x| + 1),
 * where 2 / (e + 1) < 1/4 keeps the exp's error under half an ulp of the result. Every f32
 * lies within 1.11 ulp of the true tanh (checked over all of them; glibc's tanhf: 2.19). */
#if NB_ISA_ID == 0 || NB_TMPL_F64
static inline vec v_tanh(vec x) { return VTANH(x); }
#else
static inline vec v_tanh(vec x)
{
    const vec a = VABS(x), a2 = a * a;
    vec q = vzero + (real)-3.805433225e-4;
    q = VFMA(q, a2, vzero + (real)2.371742856e-3);
    q = VFMA(q, a2, vzero + (real)-8.033433930e-3);
    q = VFMA(q, a2, vzero + (real)2.153972164e-2);
    q = VFMA(q, a2, vzero + (real)-5.389601737e-2);
    q = VFMA(q, a2, vzero + (real)1.333257109e-1);
    q = VFMA(q, a2, vzero + (real)-3.333330452e-1);
    const vec small = VFMA(a * a2, q, a);
    const vec big = (real)1 - (real)2 / (VEXP(a + a) + (real)1);
    return VCOPYSIGN(VSEL_GT(a, 0.98, small, big), x);
}
#endif
static inline vec v_log1pexp_neg_abs(vec x) { return v_log1p_small(VEXP(-VABS(x))); }
/* The standard normal CDF through erfc: 1 + erf(x) would cancel for negative x. */
static inline vec v_phi_cdf(vec x) { return (real)0.5 * VERFC(-x * (real)M_SQRT1_2); }

/* forward */
KERNEL(COPY) { ARGS; LOOP y[i] = a[i]; }
KERNEL(ADD) { ARGS; LOOP y[i] = a[i] + b[i]; }
KERNEL(SUB) { ARGS; LOOP y[i] = a[i] - b[i]; }
KERNEL(MUL) { ARGS; LOOP y[i] = a[i] * b[i]; }
DIVIDER_BOUND KERNEL(DIV) { ARGS; LOOP y[i] = a[i] / b[i]; }
KERNEL(SCALE) { ARGS; const real s0 = (real)s[0]; LOOP y[i] = s0 * a[i]; }
KERNEL(ADDS) { ARGS; const real s0 = (real)s[0]; LOOP y[i] = a[i] + s0; }
KERNEL(SQUARE) { ARGS; LOOP y[i] = a[i] * a[i]; }
DIVIDER_BOUND KERNEL(SQRT) { ARGS; LOOP y[i] = SSQRT(a[i]); }
KERNEL(EXP) { ARGS; MAP(0, VEXP(x)); }
KERNEL(LOG) { ARGS; MAP(0, VLOG(x)); }
KERNEL(LOG1P) { ARGS; MAP(0, v_log1p(x)); }
KERNEL(TANH) { ARGS; MAP(0, v_tanh(x)); }
KERNEL(SIGMOID) { ARGS; MAP(0, v_sigmoid(x)); }
KERNEL(RELU) { ARGS; LOOP y[i] = a[i] < 0 ? 0 : a[i]; }
KERNEL(SOFTPLUS) { ARGS; MAP(0, VMAX(x, vzero) + v_log1pexp_neg_abs(x)); }
KERNEL(LOGSIGMOID) { ARGS; MAP(0, VMIN(x, vzero) - v_log1pexp_neg_abs(x)); }
KERNEL(CLAMP)
{
    ARGS;
    const real lo = (real)s[0], hi = (real)s[1];
    LOOP y[i] = a[i] < lo ? lo : a[i] > hi ? hi : a[i];
}
KERNEL(WHERE) { ARGS; LOOP y[i] = a[i] != 0 ? b[i] : c[i]; }
KERNEL(GT) { ARGS; LOOP y[i] = a[i] > b[i] ? 1 : 0; }
KERNEL(LEAKY_RELU) { ARGS; const real s0 = (real)s[0]; LOOP y[i] = a[i] > 0 ? a[i] : s0 * a[i]; }
KERNEL(ELU) { ARGS; const real s0 = (real)s[0]; MAP(0, VSEL_GT(x, (real)0, s0 * VEXPM1(x), x)); }
KERNEL(GELU) { ARGS; MAP(0, x * v_phi_cdf(x)); }
KERNEL(ABS) { ARGS; LOOP y[i] = SFABS(a[i]); }
KERNEL(POW) { ARGS; const real s0 = (real)s[0]; MAP(0, VPOW(x, vzero + s0)); }
KERNEL(MAX2) { ARGS; LOOP y[i] = (a[i] > b[i] || a[i] != a[i]) ? a[i] : b[i]; }
KERNEL(MIN2) { ARGS; LOOP y[i] = (a[i] < b[i] || a[i] != a[i]) ? a[i] : b[i]; }
KERNEL(EQ) { ARGS; LOOP y[i] = a[i] == b[i] ? 1 : 0; }
KERNEL(RELU_MASK) { ARGS; LOOP y[i] = b[i] > 0 ? a[i] : 0; }
KERNEL(BCE) { ARGS; MAP(0, VMAX(x, vzero) - x * u + v_log1pexp_neg_abs(x)); }
KERNEL(SQDIFF) { ARGS; LOOP y[i] = (a[i] - b[i]) * (a[i] - b[i]); }
KERNEL(GNLL) { ARGS; MAP(0, (real)0.5 * ((real)LOG_2PI + u + x * x * VEXP(-u))); }
KERNEL(KL) { ARGS; MAP(0, (real)-0.5 * ((real)1 + u - x * x - VEXP(u))); }
KERNEL(LOGPDF) { ARGS; MAP(0, (real)-0.5 * ((real)LOG_2PI + u + x * x * VEXP(-u))); }

/* accumulate */
KERNEL(ACC) { ARGS; LOOP y[i] += a[i]; }
KERNEL(ACC_SCALE) { ARGS; const real s0 = (real)s[0]; LOOP y[i] += s0 * a[i]; }
KERNEL(ACC_MUL) { ARGS; LOOP y[i] += a[i] * b[i]; }
KERNEL(ACC_SMUL) { ARGS; const real s0 = (real)s[0]; LOOP y[i] += s0 * a[i] * b[i]; }
DIVIDER_BOUND KERNEL(ACC_DIV) { ARGS; LOOP y[i] += a[i] / b[i]; }
DIVIDER_BOUND KERNEL(ACC_DIVB) { ARGS; LOOP y[i] -= a[i] * b[i] / (c[i] * c[i]); }
DIVIDER_BOUND KERNEL(ACC_SQRTB) { ARGS; LOOP y[i] += (real)0.5 * a[i] / b[i]; }
DIVIDER_BOUND KERNEL(ACC_LOG1PB) { ARGS; LOOP y[i] += a[i] / (1 + b[i]); }
KERNEL(ACC_SQUAREB) { ARGS; LOOP y[i] += 2 * a[i] * b[i]; }
KERNEL(ACC_TANHB) { ARGS; LOOP y[i] += a[i] * (1 - b[i] * b[i]); }
KERNEL(ACC_SIGMOIDB) { ARGS; LOOP y[i] += a[i] * b[i] * (1 - b[i]); }
KERNEL(ACC_RELUB) { ARGS; LOOP y[i] += b[i] > 0 ? a[i] : 0; }
KERNEL(ACC_MULSIG) { ARGS; const real s0 = (real)s[0]; MAP(1, yv + x * v_sigmoid(s0 * u)); }
KERNEL(ACC_CLAMPB)
{
    ARGS;
    const real lo = (real)s[0], hi = (real)s[1];
    LOOP y[i] += (lo <= b[i] && b[i] <= hi) ? a[i] : 0;
}
/* s0 picks the polarity, so one kernel serves both branches of where(). */
KERNEL(ACC_MASK)
{
    ARGS;
    const int want = s[0] != 0;
    LOOP y[i] += ((b[i] != 0) == want) ? a[i] : 0;
}
KERNEL(ACC_MULEXP) { ARGS; MAP(1, yv + x * VEXP(u - w)); }
KERNEL(ACC_LEAKYB) { ARGS; const real s0 = (real)s[0]; LOOP y[i] += b[i] > 0 ? a[i] : s0 * a[i]; }
KERNEL(ACC_ELUB) { ARGS; const real s0 = (real)s[0]; LOOP y[i] += b[i] > 0 ? a[i] : a[i] * (b[i] + s0); }
KERNEL(ACC_GELUB)
{
    ARGS;
    MAP(1, yv + x * (v_phi_cdf(u) + u * VEXP((real)-0.5 * u * u) * (real)INV_SQRT_2PI));
}
KERNEL(ACC_BCEB) { ARGS; const real s0 = (real)s[0]; MAP(1, yv + s0 * x * (v_sigmoid(u) - w)); }
KERNEL(ACC_SQDIFFB) { ARGS; const real s0 = (real)s[0]; LOOP y[i] += s0 * 2 * a[i] * (b[i] - c[i]); }
KERNEL(ACC_GNLL_D) { ARGS; const real s0 = (real)s[0]; MAP(1, yv + s0 * x * u * VEXP(-w)); }
KERNEL(ACC_GNLL_LV)
{
    ARGS;
    const real s0 = (real)s[0];
    MAP(1, yv + s0 * x * (real)0.5 * ((real)1 - u * u * VEXP(-w)));
}
KERNEL(ACC_KL_LV) { ARGS; const real s0 = (real)s[0]; MAP(1, yv + s0 * x * (real)0.5 * VEXPM1(u)); }
KERNEL(ACC_SIGNB) { ARGS; LOOP y[i] += b[i] > 0 ? a[i] : b[i] < 0 ? -a[i] : 0; }
KERNEL(ACC_POWB)
{
    ARGS;
    const real s0 = (real)s[0];
    MAP(1, yv + x * s0 * VPOW(u, vzero + (s0 - (real)1)));
}
KERNEL(ACC_PICKB) { ARGS; LOOP y[i] += b[i] > c[i] ? a[i] : b[i] == c[i] ? (real)0.5 * a[i] : 0; }
DIVIDER_BOUND KERNEL(ACC_MULDIV) { ARGS; LOOP y[i] += a[i] * b[i] / c[i]; }
KERNEL(ACC_LSMB) { ARGS; MAP(1, yv + x - VEXP(u) * w); }
KERNEL(ACC_SMB) { ARGS; LOOP y[i] += b[i] * (a[i] - c[i]); }
KERNEL(MAXACC) { ARGS; LOOP y[i] = (a[i] > y[i] || a[i] != a[i]) ? a[i] : y[i]; }
KERNEL(MINACC) { ARGS; LOOP y[i] = (a[i] < y[i] || a[i] != a[i]) ? a[i] : y[i]; }

/* Reductions keep VL partial results and combine them in a fixed order: deterministic for a
 * given ISA, whatever the thread count. */
static void r_sum(int64_t n, const void *A, void *acc)
{
    const real *a = A;
    real part[VL] = {0};
    int64_t i = 0;
    for (; i + VL <= n; i += VL)
        for (int j = 0; j < VL; j++) part[j] += a[i + j];
    real t = 0;
    for (int j = 0; j < VL; j++) t += part[j];
    for (; i < n; i++) t += a[i];
    *(real *)acc += t;
}

/* Max and min run on vectors while every element is finite (x − x is 0 for each), which the
 * select that carries a NaN through does not allow; an infinity or a NaN sends the whole span to
 * that select, one element at a time. A NaN anywhere gives NaN. */
#define R_EXTREMUM(name, cmp, VOP)                                                                 \
    static void name(int64_t n, const void *A, void *acc)                                          \
    {                                                                                              \
        const real *a = A;                                                                         \
        real m = *(real *)acc;                                                                     \
        int64_t i = 0;                                                                             \
        if (n >= VL) {                                                                             \
            vec ext = vld(a), chk = vzero;                                                         \
            for (; i + VL <= n; i += VL) {                                                         \
                const vec x = vld(a + i);                                                          \
                ext = VOP(x, ext), chk = chk + (x - x); /* x cmp ext ? x : ext, as below */        \
            }                                                                                      \
            real e[VL], c[VL];                                                                     \
            vst(e, ext), vst(c, chk);                                                              \
            int finite = 1;                                                                        \
            for (int j = 0; j < VL; j++) finite &= c[j] == 0;                                      \
            if (finite)                                                                            \
                for (int j = 0; j < VL; j++) m = e[j] cmp m ? e[j] : m;                            \
            else                                                                                   \
                i = 0;                                                                             \
        }                                                                                          \
        for (; i < n; i++) m = (a[i] cmp m || a[i] != a[i]) ? a[i] : m;                            \
        *(real *)acc = m;                                                                          \
    }
R_EXTREMUM(r_max, >, VMAX_FAST)
R_EXTREMUM(r_min, <, VMIN_FAST)
#undef R_EXTREMUM

/* The first index of the row's minimum (or maximum); the first NaN when there is one. The
 * extreme comes from the vector reduction, then a scan for it a vector at a time (a compare to
 * a lane mask): a scalar scan was most of the VQ-VAE's nearest-code lookup. */
static int64_t first_index(int64_t n, const real *a, real m)
{
    int64_t i = 0;
    if (m != m) {
        while (a[i] == a[i]) i++;
        return i;
    }
    for (; i + VL <= n; i += VL) {
        const unsigned hit = VEQ_MASK(vld(a + i), m);
        if (hit) return i + __builtin_ctz(hit);
    }
    while (a[i] != m) i++;
    return i;
}

static int64_t r_argmin(int64_t n, const void *A)
{
    real m = (real)INFINITY;
    r_min(n, A, &m);
    return first_index(n, A, m);
}

static int64_t r_argmax(int64_t n, const void *A)
{
    real m = (real)-INFINITY;
    r_max(n, A, &m);
    return first_index(n, A, m);
}

static void r_sumsq(int64_t n, const void *A, double *acc)
{
    const real *a = A;
    double part[VL] = {0};
    int64_t i = 0;
    for (; i + VL <= n; i += VL)
        for (int j = 0; j < VL; j++) part[j] += (double)a[i + j] * (double)a[i + j];
    double t = 0;
    for (int j = 0; j < VL; j++) t += part[j];
    for (; i < n; i++) t += (double)a[i] * (double)a[i];
    *acc += t;
}

/* The optimizer updates, in the order PyTorch 1.13 evaluates them (torch/optim/sgd.py, adam.py,
 * ...), so that results match it to rounding. Each zeroes the gradient it read (the next step's
 * backward adds into zeros without another pass over memory), unless the gradients are to be
 * marked zero instead (nb_params_clear_grad). Flags are loop-invariant; the compiler unswitches them. */
static void o_sgd(int64_t n, void *P, void *G, void *B, const nb_optim_args *o)
{
    real *p = P, *buf = B, *g = G;
    const real lr = (real)o->lr, wd = (real)o->weight_decay, mom = (real)o->momentum;
    const real keep = (real)(1 - o->dampening);
    for (int64_t i = 0; i < n; i++) {
        real d = wd != 0 ? g[i] + wd * p[i] : g[i];
        if (mom != 0) {
            buf[i] = o->first ? d : buf[i] * mom + keep * d;
            d = o->nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] += -lr * d;
        if (!o->keep_grad) g[i] = 0;
    }
}

DIVIDER_BOUND static void o_adam(int64_t n, void *P, void *G, void *M, void *V, const nb_optim_args *o)
{
    real *p = P, *m = M, *v = V, *g = G;
    const real wd = (real)o->weight_decay, b1 = (real)o->beta1, b2 = (real)o->beta2;
    /* 1 − β rounded from double, as PyTorch passes it (alpha = 1 − β1, value = 1 − β2): in f32,
     * 1 − (float)0.999 is 1.3e-5 smaller, and every update was 6e-6 too large */
    const real c1 = (real)(1 - o->beta1), c2 = (real)(1 - o->beta2);
    const real decay = (real)(1 - o->lr * o->weight_decay), eps = (real)o->eps;
    const real step = (real)o->step_size, bc2 = (real)o->bc2_sqrt;
    for (int64_t i = 0; i < n; i++) {
        real gi = g[i];
        if (!o->keep_grad) g[i] = 0;
        if (o->decoupled)
            p[i] *= decay; /* AdamW */
        else if (wd != 0)
            gi = gi + wd * p[i];
        m[i] = m[i] * b1 + c1 * gi;
        v[i] = v[i] * b2 + c2 * gi * gi;
        real denom = SSQRT(v[i]) / bc2 + eps;
        p[i] += -step * m[i] / denom;
    }
}

DIVIDER_BOUND static void o_adagrad(int64_t n, void *P, void *G, void *S, const nb_optim_args *o)
{
    real *p = P, *sum = S, *g = G;
    const real wd = (real)o->weight_decay, clr = (real)o->step_size, eps = (real)o->eps;
    for (int64_t i = 0; i < n; i++) {
        real gi = wd != 0 ? g[i] + wd * p[i] : g[i];
        if (!o->keep_grad) g[i] = 0;
        sum[i] += gi * gi;
        p[i] += -clr * gi / (SSQRT(sum[i]) + eps);
    }
}

/* BCE with logits a and targets b: y its terms, exactly as the BCE kernel makes them, and d the
 * logits' derivative σ(a) - b from the same e = exp(-|a|): σ(a) = 1 / (1 + e) for a > 0, and
 * e / (1 + e) otherwise. A training forward keeps d, and the backward makes no exp of its own. */
static inline void v_bce2(vec x, vec t, vec *terms, vec *d)
{
    const vec e = VEXP(-VABS(x)), r = (real)1 / ((real)1 + e);
    *terms = VMAX(x, vzero) - x * t + v_log1p_small(e);
    *d = VSEL_GT(x, (real)0, e * r, r) - t;
}

static void o_bce2(int64_t n, void *Y, void *D, const void *A, const void *B)
{
    real *y = Y, *d = D;
    const real *a = A, *b = B;
    vec tv, dv;
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        v_bce2(vld(a + i), vld(b + i), &tv, &dv);
        vst(y + i, tv), vst(d + i, dv);
    }
    if (i < n) { /* the tail zero-padded, as MAP's */
        real ta[VL] = {0}, tb[VL] = {0}, ty[VL], td[VL];
        const size_t rest = (size_t)(n - i) * sizeof(real);
        memcpy(ta, a + i, rest), memcpy(tb, b + i, rest);
        v_bce2(vld(ta), vld(tb), &tv, &dv);
        vst(ty, tv), vst(td, dv);
        memcpy(y + i, ty, rest), memcpy(d + i, td, rest);
    }
}

#if NB_TMPL_F64
/* Box-Muller over n pairs of uniforms, in place: (r, t) = (u1, u2) ->
 * p0 + p1·ρ·cos θ, p0 + p1·ρ·sin θ with ρ = √(−2 log(1 − u1)), θ = 2π·u2. The tail goes through
 * a padded vector, so a pair's normals never depend on its position in the call. */
static inline void box_muller_vec(real *r, real *t, real p0, real p1)
{
    const vec rho = VSQRT((real)-2 * VLOG((real)1 - vld(r))), th = (real)(2 * M_PI) * vld(t);
    vec sn, cs;
    VSINCOS(th, sn, cs);
    vst(r, p0 + p1 * rho * cs);
    vst(t, p0 + p1 * rho * sn);
}

static void k_box_muller(int64_t n, double *r, double *t, double p0, double p1)
{
    int64_t i = 0;
    for (; i + VL <= n; i += VL) box_muller_vec(r + i, t + i, p0, p1);
    if (i < n) {
        real tr[VL] = {0}, tt[VL] = {0};
        memcpy(tr, r + i, (size_t)(n - i) * sizeof(real));
        memcpy(tt, t + i, (size_t)(n - i) * sizeof(real));
        box_muller_vec(tr, tt, p0, p1);
        memcpy(r + i, tr, (size_t)(n - i) * sizeof(real));
        memcpy(t + i, tt, (size_t)(n - i) * sizeof(real));
    }
}
#endif

void FILL_FN(nb_kernel_table *k)
{
    k->isa = STR(ISA);
#define NB_EW(id, nin, ulp, doc) k->ew[NB_EW_##id] = k_##id;
#include "tensor/ew.def"
#undef NB_EW
    k->sum = r_sum;
    k->max = r_max;
    k->min = r_min;
    k->argmin = r_argmin;
    k->argmax = r_argmax;
    k->sumsq = r_sumsq;
    k->sgd = o_sgd;
    k->adam = o_adam;
    k->adagrad = o_adagrad;
    k->bce2 = o_bce2;
#if NB_TMPL_F64
    k->box_muller = k_box_muller;
#endif
}
