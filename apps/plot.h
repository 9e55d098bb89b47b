/* apps/plot.h — plots rendered to PNG with PLplot's cairo driver (no display needed). */
#ifndef NB_APPS_PLOT_H
#define NB_APPS_PLOT_H

#include "nabla/nabla.h"

typedef struct plot_series {
    const char *label;
    const double *x, *y;
    int n;
    int dashed;
} plot_series;

/* Line chart: several series on one set of axes (a legend names them); log_y for a log axis. */
nb_status plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                     int nseries, const plot_series *s, int log_y);

/* Several line charts side by side in one picture (e.g. -ELBO, reconstruction, KL per epoch);
 * panel i draws nseries[i] series from s (consecutively). */
nb_status plot_panels(const char *path, int npanels, const char *const *titles, const char *xlabel,
                      const int *nseries, const plot_series *s);

/* Scatter of n points coloured by integer label (0..nlabels-1) with a legend of label names. */
nb_status plot_scatter(const char *path, const char *title, const double *x, const double *y,
                       const int *label, int n, int nlabels, const char *const *label_names);

/* Arrows from (x0, y0) to (x1, y1), over an optional cloud of points (px, py, np). */
nb_status plot_arrows(const char *path, const char *title, const double *x0, const double *y0,
                      const double *x1, const double *y1, int n, const double *px,
                      const double *py, int np);

#endif
