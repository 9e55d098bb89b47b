/* nn/conv_ref.h — internal: plain loops for 2-D convolution, the f64 path and the reference
 * the oneDNN path is tested against. */
#ifndef NB_CONV_REF_H
#define NB_CONV_REF_H

#include <stdint.h>

/* A convolution from x (N, C, H, W) to y (N, O, OH, OW) with weights (O, C, KH, KW). */
typedef struct nb_conv_geom {
    int64_t N, C, H, W, O, KH, KW, OH, OW;
    int sh, sw, ph, pw, dh, dw;
} nb_conv_geom;

/* Each adds into its output (+=). A transposed convolution is the same three loops with the
 * roles swapped: its forward is the backward-data of the convolution from its output back to
 * its input, and so on (see nn/conv.c). */
void nb_conv_ref_fwd(const nb_conv_geom *g, const double *x, const double *w, double *y);
void nb_conv_ref_bwd_data(const nb_conv_geom *g, const double *gy, const double *w, double *gx);
void nb_conv_ref_bwd_weights(const nb_conv_geom *g, const double *x, const double *gy, double *gw);

#endif
