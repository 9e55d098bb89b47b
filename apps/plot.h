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
 * panel i draws nseries[i] series from s (consecutively), under titles[i], its y axis named
 * ylabels[i] (either array may be NULL). Legends sit below the frame, never over a curve. */
nb_status plot_panels(const char *path, int npanels, const char *const *titles, const char *xlabel,
                      const char *const *ylabels, const int *nseries, const plot_series *s);

/* Scatter of n points coloured by integer label (0..nlabels-1) with a legend of label names. */
nb_status plot_scatter(const char *path, const char *title, const char *xlabel, const char *ylabel,
                       const double *x, const double *y, const int *label, int n, int nlabels,
                       const char *const *label_names);

/* 2-D maps, one or several panels side by side, each with equal scales on both axes and layers
 * drawn in order: dots, a polyline, or arrows from (x, y) to (x1, y1); names, when given, are
 * written beside the points. Colour 0 is a light grey (a cloud), 1..10 the series colours.
 * A single map gives the layers with a label a legend right of the frame; several side by side
 * have none, so their titles say what is drawn, and share their axes. */
typedef enum plot_style { PLOT_DOTS, PLOT_LINE, PLOT_ARROWS } plot_style;
typedef struct plot_layer {
    const char *label;
    plot_style style;
    const double *x, *y, *x1, *y1;
    int n;
    int colour;
    double size; /* dots: symbol scale (0: 0.6) */
    const char *const *names;
} plot_layer;
typedef struct plot_panel {
    const char *title, *xlabel, *ylabel;
    int nlayers;
    const plot_layer *layers;
} plot_panel;
nb_status plot_layers(const char *path, int npanels, const plot_panel *p);

#endif
