/* nn/conv_ref.c — see conv_ref.h. One index walk, three uses: the loops differ only in which
 * of x, w, y is written. */
#include "nn/conv_ref.h"

typedef enum { FWD, BWD_DATA, BWD_WEIGHTS } pass;

static void walk(const nb_conv_geom *g, pass p, double *x, double *w, double *y)
{
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t o = 0; o < g->O; o++)
            for (int64_t oh = 0; oh < g->OH; oh++)
                for (int64_t ow = 0; ow < g->OW; ow++) {
                    double *yv = &y[((n * g->O + o) * g->OH + oh) * g->OW + ow];
                    for (int64_t c = 0; c < g->C; c++)
                        for (int64_t kh = 0; kh < g->KH; kh++) {
                            int64_t ih = oh * g->sh - g->ph + kh * g->dh;
                            if (ih < 0 || ih >= g->H) continue;
                            for (int64_t kw = 0; kw < g->KW; kw++) {
                                int64_t iw = ow * g->sw - g->pw + kw * g->dw;
                                if (iw < 0 || iw >= g->W) continue;
                                double *xv = &x[((n * g->C + c) * g->H + ih) * g->W + iw];
                                double *wv = &w[((o * g->C + c) * g->KH + kh) * g->KW + kw];
                                switch (p) {
                                case FWD: *yv += *xv * *wv; break;
                                case BWD_DATA: *xv += *yv * *wv; break;
                                case BWD_WEIGHTS: *wv += *yv * *xv; break;
                                }
                            }
                        }
                }
}

void nb_conv_ref_fwd(const nb_conv_geom *g, const double *x, const double *w, double *y)
{
    walk(g, FWD, (double *)x, (double *)w, y);
}

void nb_conv_ref_bwd_data(const nb_conv_geom *g, const double *gy, const double *w, double *gx)
{
    walk(g, BWD_DATA, gx, (double *)w, (double *)gy);
}

void nb_conv_ref_bwd_weights(const nb_conv_geom *g, const double *x, const double *gy, double *gw)
{
    walk(g, BWD_WEIGHTS, (double *)x, gw, (double *)gy);
}
