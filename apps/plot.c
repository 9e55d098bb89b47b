/* apps/plot.c — line charts, panels, scatter and arrow plots as PNG through PLplot's pngcairo
 * driver (no display). Each plot is one plinit … plend session on a temporary file that is then
 * renamed, so plots can follow one another in a process. PLplot keeps global state: plot from
 * one thread at a time. Arguments are checked before PLplot sees them, because PLplot's answer
 * to some bad calls is exit(). */
#include <errno.h>
#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/image.h"
#include "apps/plot.h"
#include "tensor/error.h"
#include "tensor/file.h"

/* Picture sizes in pixels; a panel picture is PANEL_W per panel wide. */
enum { PLOT_W = 900, PLOT_H = 560, PANEL_W = 450, PANEL_H = 420, MAX_PANELS = 8 };
/* Colour map 0: white background, black ink, ten series/label colours, grey for point clouds. */
enum { COL_BG = 0, COL_INK = 1, COL_SERIES = 2, NCOLOURS = 10, COL_CLOUD = 12, COL_GRID = 13, NCOL0 = 16 };
enum { LEGEND_MAX = 32 }; /* legend entries shown; more series or labels reuse the colours */

/* matplotlib's "tab10": ten colours that stay apart for most eyes */
static const unsigned char palette[NCOLOURS][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};

static const char *str_or_empty(const char *s) { return s ? s : ""; }

/* ---- axis ranges ---------------------------------------------------------------------------- */

typedef struct range {
    double lo, hi;
    int any, fractional; /* fractional: some value is not a whole number */
} range;

static void range_add(range *r, double v)
{
    if (!isfinite(v)) return;
    if (v != floor(v)) r->fractional = 1;
    if (!r->any || v < r->lo) r->lo = v;
    if (!r->any || v > r->hi) r->hi = v;
    r->any = 1;
}

/* Widens the range by 4 % each side; an empty range becomes [0, 1] and a single value v
 * [v - d, v + d], so plenv never sees min == max. */
static void range_finish(range *r)
{
    if (!r->any) r->lo = 0, r->hi = 1;
    double m = 0.04 * (r->hi - r->lo);
    if (!(m > 0) || !isfinite(m)) m = r->lo != 0 ? 0.1 * fabs(r->lo) : 0.5;
    r->lo -= m, r->hi += m;
}

/* y as drawn: log10 on a log axis, where y <= 0 cannot be shown (NaN, so skipped). */
static double y_axis(double y, int log_y) { return !log_y ? y : y > 0 ? log10(y) : NAN; }

/* ---- one PLplot session on a temporary file --------------------------------------------------- */

static int has_pngcairo(void)
{
    const char *menu[128], *dev[128];
    const char **pm = menu, **pd = dev;
    int n = 128;
    plgDevs(&pm, &pd, &n);
    for (int i = 0; i < n; i++)
        if (!strcmp(dev[i], "pngcairo")) return 1;
    return 0;
}

/* Creates <path>.tmp.XXXXXX (into *tmp, malloc'd) and starts PLplot on it. */
static nb_status plot_begin(const char *path, int w, int h, char **tmp)
{
    *tmp = NULL;
    /* without its driver plinit would ask on stdin for another device */
    if (!has_pngcairo())
        return nb_error(NB_ERR_IO, "%s: PLplot has no pngcairo driver (plplot-driver-cairo)", path);
    char *t;
    const int fd = nb_tmp_create(path, &t);
    if (fd < 0) return NB_ERR_IO;
    close(fd); /* PLplot reopens the (empty) file by name */
    plsdev("pngcairo");
    plsfnam(t);
    plspage(0, 0, w, h, 0, 0);
    plscmap0n(NCOL0);
    plscolbg(255, 255, 255);
    plscol0(COL_INK, 0, 0, 0); /* after a white background the default ink is white too */
    for (int i = 0; i < NCOLOURS; i++) plscol0(COL_SERIES + i, palette[i][0], palette[i][1], palette[i][2]);
    plscol0(COL_CLOUD, 190, 190, 190);
    plscol0(COL_GRID, 225, 225, 225);
    plinit();
    plcol0(COL_INK);
    *tmp = t;
    return NB_OK;
}

/* Ends PLplot, checks that it wrote a w × h PNG, and renames it to path (or removes it). */
static nb_status plot_end(const char *path, char *tmp, int w, int h)
{
    plend();
    int pw = 0, ph = 0, pc = 0;
    char why[256] = "";
    if (img_read_info(tmp, &pw, &ph, &pc)) snprintf(why, sizeof why, "%s", nb_last_error());
    else if (pw != w || ph != h) snprintf(why, sizeof why, "%d×%d pixels, not %d×%d", pw, ph, w, h);
    nb_status st = nb_tmp_finish(path, tmp, !why[0]);
    if (why[0]) st = nb_error(NB_ERR_IO, "%s: PLplot did not write the plot: %s", path, why);
    return st;
}

/* ---- drawing -------------------------------------------------------------------------------- */

/* The world window, a light grid under everything, then the black frame with ticks and numbers.
 * Whole-number x over a short span (epochs) gets a tick per unit: no "epoch 1.5". */
static void axes(const range *rx, const range *ry, int log_y)
{
    const int whole = !rx->fractional && rx->hi - rx->lo <= 12;
    const double xtick = whole ? 1 : 0;
    const int nxsub = whole ? 1 : 0;
    plwind(rx->lo, rx->hi, ry->lo, ry->hi);
    plcol0(COL_GRID);
    plbox("g", xtick, nxsub, log_y ? "ghl" : "g", 0, 0);
    plcol0(COL_INK);
    plbox("bcnst", xtick, nxsub, log_y ? "bcfnstvl" : "bcnstv", 0, 0); /* f: 100, not 10², on a log axis */
}

static void flush_run(int m, const double *bx, const double *by)
{
    if (m > 1) plline(m, bx, by);
    if (m == 1) plpoin(1, bx, by, 1); /* a lone finite point between gaps */
}

/* A series as polylines through its finite points: a NaN or inf leaves a gap. */
static void draw_series(const plot_series *s, int log_y, double *bx, double *by)
{
    int m = 0;
    for (int j = 0; j < s->n; j++) {
        const double y = y_axis(s->y[j], log_y);
        if (isfinite(s->x[j]) && isfinite(y)) {
            bx[m] = s->x[j], by[m] = y, m++;
        } else {
            flush_run(m, bx, by);
            m = 0;
        }
    }
    flush_run(m, bx, by);
}

/* A legend of line samples for the series with labels, outside the frame so that it never hides
 * a curve: one row under the x-axis label. */
static void legend_lines(int ns, const plot_series *s, double text_scale)
{
    PLINT opt[LEGEND_MAX], tcol[LEGEND_MAX], lcol[LEGEND_MAX], lsty[LEGEND_MAX];
    PLFLT lwid[LEGEND_MAX], w, h;
    const char *text[LEGEND_MAX];
    int m = 0;
    for (int i = 0; i < ns && m < LEGEND_MAX; i++) {
        if (!s[i].label) continue;
        opt[m] = PL_LEGEND_LINE, tcol[m] = COL_INK, text[m] = s[i].label;
        lcol[m] = COL_SERIES + i % NCOLOURS, lsty[m] = s[i].dashed ? 2 : 1, lwid[m] = 2;
        m++;
    }
    if (!m) return;
    pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_BOTTOM | PL_POSITION_OUTSIDE,
             0, 0.25, 0.06, COL_BG, COL_INK, 1, 1, m, m, opt, 1.0, text_scale, 2.0, 0.0, tcol, text,
             NULL, NULL, NULL, NULL, lcol, lsty, lwid, NULL, NULL, NULL, NULL);
}

/* One set of axes with ns series; bx, by hold the longest series. */
static void draw_lines(const char *title, const char *xlabel, const char *ylabel, int ns,
                       const plot_series *s, int log_y, double legend_scale, double *bx, double *by)
{
    range rx = {0}, ry = {0};
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            const double y = y_axis(s[i].y[j], log_y);
            if (isfinite(s[i].x[j]) && isfinite(y)) range_add(&rx, s[i].x[j]), range_add(&ry, y);
        }
    range_finish(&rx), range_finish(&ry);
    pladv(0); /* the next subpage, in panels */
    plvpor(0.17, 0.96, 0.34, 0.90); /* room left for the y label, below for the x label and the legend */
    axes(&rx, &ry, log_y);
    pllab(str_or_empty(xlabel), str_or_empty(ylabel), str_or_empty(title));
    plwidth(2);
    for (int i = 0; i < ns; i++) {
        plcol0(COL_SERIES + i % NCOLOURS);
        pllsty(s[i].dashed ? 2 : 1);
        draw_series(&s[i], log_y, bx, by);
    }
    pllsty(1);
    plwidth(1);
    legend_lines(ns, s, legend_scale);
}

/* Scratch x and y for the longest of ns series (*n of each; at least one, never malloc(0)). */
static double *series_buffer(int ns, const plot_series *s, size_t *n)
{
    *n = 1;
    for (int i = 0; i < ns; i++) *n = (size_t)s[i].n > *n ? (size_t)s[i].n : *n;
    return malloc(2 * *n * sizeof(double));
}

static nb_status check_series(const char *path, int ns, const plot_series *s)
{
    for (int i = 0; i < ns; i++)
        if (s[i].n < 0 || (s[i].n > 0 && (!s[i].x || !s[i].y)))
            return nb_error(NB_ERR_ARG, "%s: series %d: n = %d or NULL x, y", path, i, s[i].n);
    return NB_OK;
}

nb_status plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                     int nseries, const plot_series *s, int log_y)
{
    if (!path || nseries < 0 || (nseries && !s))
        return nb_error(NB_ERR_ARG, "plot_lines: NULL path or series, or nseries %d < 0", nseries);
    nb_status st = check_series(path, nseries, s);
    size_t n = 0;
    double *buf = st ? NULL : series_buffer(nseries, s, &n);
    if (!st && !buf) st = nb_error(NB_ERR_NOMEM, "%s: out of memory", path);
    char *tmp;
    if (!st && !(st = plot_begin(path, PLOT_W, PLOT_H, &tmp))) {
        draw_lines(title, xlabel, ylabel, nseries, s, log_y, 0.9, buf, buf + n);
        st = plot_end(path, tmp, PLOT_W, PLOT_H);
    }
    free(buf);
    return st;
}

nb_status plot_panels(const char *path, int npanels, const char *const *titles, const char *xlabel,
                      const char *const *ylabels, const int *nseries, const plot_series *s)
{
    if (!path || npanels < 1 || npanels > MAX_PANELS || !nseries)
        return nb_error(NB_ERR_ARG, "plot_panels: NULL path or nseries, or npanels %d not 1..%d",
                        npanels, MAX_PANELS);
    int total = 0;
    for (int i = 0; i < npanels; i++) {
        if (nseries[i] < 0) return nb_error(NB_ERR_ARG, "%s: panel %d: nseries %d < 0", path, i, nseries[i]);
        total += nseries[i];
    }
    if (total && !s) return nb_error(NB_ERR_ARG, "%s: NULL series", path);
    nb_status st = check_series(path, total, s);
    size_t n = 0;
    double *buf = st ? NULL : series_buffer(total, s, &n);
    if (!st && !buf) st = nb_error(NB_ERR_NOMEM, "%s: out of memory", path);
    char *tmp;
    const int w = npanels == 1 ? PLOT_W : PANEL_W * npanels, h = npanels == 1 ? PLOT_H : PANEL_H;
    if (!st && !(st = plot_begin(path, w, h, &tmp))) {
        plssub(npanels, 1); /* draw_lines moves on to the next subpage */
        if (npanels > 1) plschr(0, 0.8); /* PLplot keeps the full-page letter size in a smaller panel */
        for (int i = 0, first = 0; i < npanels; first += nseries[i], i++)
            draw_lines(titles ? titles[i] : NULL, xlabel, ylabels ? ylabels[i] : NULL, nseries[i], s + first, 0, 0.7,
                       buf, buf + n);
        st = plot_end(path, tmp, w, h);
    }
    free(buf);
    return st;
}

nb_status plot_scatter(const char *path, const char *title, const char *xlabel, const char *ylabel,
                       const double *x, const double *y, const int *label, int n, int nlabels,
                       const char *const *label_names)
{
    if (!path || n < 0 || (n && (!x || !y || !label)) || nlabels < 1)
        return nb_error(NB_ERR_ARG, "plot_scatter: NULL path or points, or n %d < 0, or nlabels %d < 1",
                        n, nlabels);
    range rx = {0}, ry = {0};
    for (int i = 0; i < n; i++) {
        if (label[i] < 0 || label[i] >= nlabels)
            return nb_error(NB_ERR_ARG, "%s: point %d has label %d, not 0..%d", path, i, label[i], nlabels - 1);
        if (isfinite(x[i]) && isfinite(y[i])) range_add(&rx, x[i]), range_add(&ry, y[i]);
    }
    range_finish(&rx), range_finish(&ry);
    char *tmp;
    nb_status st = plot_begin(path, PLOT_W, PLOT_H, &tmp);
    if (st) return st;
    pladv(0);
    plvpor(0.10, 0.80, 0.12, 0.92); /* room on the left for the y label, on the right for the legend */
    axes(&rx, &ry, 0);
    pllab(str_or_empty(xlabel), str_or_empty(ylabel), str_or_empty(title));
    plssym(0, 0.5);
    for (int i = 0; i < n; i++) /* in data order, so that no class hides under another */
        if (isfinite(x[i]) && isfinite(y[i])) {
            plcol0(COL_SERIES + label[i] % NCOLOURS);
            plpoin(1, &x[i], &y[i], 17);
        }
    PLINT opt[LEGEND_MAX], tcol[LEGEND_MAX], bcol[LEGEND_MAX], bpat[LEGEND_MAX];
    PLFLT bscale[LEGEND_MAX], bwid[LEGEND_MAX], lw, lh;
    const char *text[LEGEND_MAX];
    char digits[LEGEND_MAX][12];
    const int m = nlabels < LEGEND_MAX ? nlabels : LEGEND_MAX;
    for (int i = 0; i < m; i++) {
        snprintf(digits[i], sizeof digits[i], "%d", i);
        text[i] = label_names && label_names[i] ? label_names[i] : digits[i];
        opt[i] = PL_LEGEND_COLOR_BOX, tcol[i] = COL_INK, bcol[i] = COL_SERIES + i % NCOLOURS;
        bpat[i] = 0, bscale[i] = 0.8, bwid[i] = 1;
    }
    pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE,
             0.02, 0, 0.03, COL_BG, COL_INK, 1, 0, 0, m, opt, 1.0, 0.9, 2.0, 0.0, tcol, text,
             bcol, bpat, bscale, bwid, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    return plot_end(path, tmp, PLOT_W, PLOT_H);
}

/* An arrow from (x0, y0) to (x1, y1) with a head of two short strokes, sized in millimetres so
 * that it looks the same whatever the axis scales (mx, my: millimetres per world unit). */
static void arrow(double x0, double y0, double x1, double y1, double mx, double my)
{
    PLFLT x[3] = {x0, x1}, y[3] = {y0, y1};
    plline(2, x, y);
    const double dx = (x1 - x0) * mx, dy = (y1 - y0) * my, len = hypot(dx, dy);
    if (!(len > 0.2)) return; /* too short to point anywhere */
    const double head = len < 6 ? 0.4 * len : 2.4, c = cos(0.45), sn = sin(0.45);
    const double ux = dx / len, uy = dy / len;
    x[0] = x1 - head * (ux * c - uy * sn) / mx, y[0] = y1 - head * (uy * c + ux * sn) / my;
    x[1] = x1, y[1] = y1;
    x[2] = x1 - head * (ux * c + uy * sn) / mx, y[2] = y1 - head * (uy * c - ux * sn) / my;
    plline(3, x, y);
}

nb_status plot_layers(const char *path, int npanels, const plot_panel *p)
{
    if (!path || npanels < 1 || npanels > MAX_PANELS || !p)
        return nb_error(NB_ERR_ARG, "plot_layers: NULL path or panels, or npanels %d not 1..%d", npanels, MAX_PANELS);
    for (int k = 0; k < npanels; k++)
        for (int i = 0; i < p[k].nlayers; i++) {
            const plot_layer *l = &p[k].layers[i];
            if (l->n < 0 || (l->n && (!l->x || !l->y || (l->style == PLOT_ARROWS && (!l->x1 || !l->y1)))))
                return nb_error(NB_ERR_ARG, "%s: panel %d, layer %d: n = %d or NULL points", path, k, i, l->n);
        }
    char *tmp;
    const int w = npanels == 1 ? PLOT_W : PANEL_W * npanels, h = npanels == 1 ? PLOT_H : PANEL_H;
    nb_status st = plot_begin(path, w, h, &tmp);
    if (st) return st;
    plssub(npanels, 1);
    if (npanels > 1) plschr(0, 0.8);
    /* panels side by side share their axes: the eye compares them point for point */
    range rx = {0}, ry = {0};
    for (int k = 0; k < npanels; k++)
        for (int i = 0; i < p[k].nlayers; i++) {
            const plot_layer *l = &p[k].layers[i];
            for (int j = 0; j < l->n; j++) {
                range_add(&rx, l->x[j]), range_add(&ry, l->y[j]);
                if (l->style == PLOT_ARROWS) range_add(&rx, l->x1[j]), range_add(&ry, l->y1[j]);
            }
        }
    range_finish(&rx), range_finish(&ry);
    for (int k = 0; k < npanels; k++) {
        pladv(0);
        /* a single map keeps room for its legend on the right; several have titles instead. Within
         * that box, the largest viewport of equal scales, centred: a 2-D map is not stretched. */
        const double bx0 = npanels == 1 ? 0.10 : 0.12, bx1 = npanels == 1 ? 0.62 : 0.96, by0 = 0.14, by1 = 0.88;
        PLFLT spx0, spx1, spy0, spy1;
        plgspa(&spx0, &spx1, &spy0, &spy1);
        const double bw = (bx1 - bx0) * (spx1 - spx0), bh = (by1 - by0) * (spy1 - spy0);
        const double aspect = (ry.hi - ry.lo) / (rx.hi - rx.lo);
        const double vw = bh / aspect < bw ? bh / aspect : bw, vh = vw * aspect;
        const double fx = vw / (spx1 - spx0), fy = vh / (spy1 - spy0), cxv = (bx0 + bx1) / 2, cyv = (by0 + by1) / 2;
        plvpor(cxv - fx / 2, cxv + fx / 2, cyv - fy / 2, cyv + fy / 2);
        axes(&rx, &ry, 0);
        pllab(str_or_empty(p[k].xlabel), str_or_empty(p[k].ylabel), str_or_empty(p[k].title));
        /* millimetres per world unit, from the viewport's place on the subpage, for arrow heads */
        PLFLT sx0, sx1, sy0, sy1, vx0, vx1, vy0, vy1, wx0, wx1, wy0, wy1;
        plgspa(&sx0, &sx1, &sy0, &sy1);
        plgvpd(&vx0, &vx1, &vy0, &vy1);
        plgvpw(&wx0, &wx1, &wy0, &wy1);
        const double mx = (sx1 - sx0) * (vx1 - vx0) / (wx1 - wx0), my = (sy1 - sy0) * (vy1 - vy0) / (wy1 - wy0);
        PLINT opt[LEGEND_MAX], tcol[LEGEND_MAX], lcol[LEGEND_MAX], lsty[LEGEND_MAX], scol[LEGEND_MAX], snum[LEGEND_MAX];
        PLFLT lwid[LEGEND_MAX], sscale[LEGEND_MAX], lw, lh;
        const char *text[LEGEND_MAX], *sym[LEGEND_MAX];
        int m = 0;
        for (int i = 0; i < p[k].nlayers; i++) {
            const plot_layer *l = &p[k].layers[i];
            const int col = l->colour ? COL_SERIES + (l->colour - 1) % NCOLOURS : COL_CLOUD;
            plcol0(col);
            if (l->style == PLOT_LINE) {
                plwidth(2);
                for (int j = 0; j + 1 < l->n; j++)
                    if (isfinite(l->x[j]) && isfinite(l->y[j]) && isfinite(l->x[j + 1]) && isfinite(l->y[j + 1]))
                        pljoin(l->x[j], l->y[j], l->x[j + 1], l->y[j + 1]);
                plwidth(1);
            } else if (l->style == PLOT_ARROWS) {
                for (int j = 0; j < l->n; j++)
                    if (isfinite(l->x[j]) && isfinite(l->y[j]) && isfinite(l->x1[j]) && isfinite(l->y1[j]))
                        arrow(l->x[j], l->y[j], l->x1[j], l->y1[j], mx, my);
            } else {
                plssym(0, l->size > 0 ? l->size : 0.6);
                for (int j = 0; j < l->n; j++)
                    if (isfinite(l->x[j]) && isfinite(l->y[j])) plpoin(1, &l->x[j], &l->y[j], 17);
            }
            if (l->names) {
                plcol0(COL_INK);
                for (int j = 0; j < l->n; j++)
                    if (l->names[j] && isfinite(l->x[j]) && isfinite(l->y[j]))
                        plptex(l->x[j] + 6 / mx * 0.25, l->y[j] + 6 / my * 0.25, 1, 0, 0, l->names[j]);
            }
            if (l->label && m < LEGEND_MAX) {
                opt[m] = l->style == PLOT_DOTS ? PL_LEGEND_SYMBOL : PL_LEGEND_LINE;
                tcol[m] = COL_INK, text[m] = l->label, lcol[m] = col, lsty[m] = 1, lwid[m] = 2;
                scol[m] = col, sscale[m] = 1.2, snum[m] = 1, sym[m] = "●";
                m++;
            }
        }
        if (m && npanels == 1)
            pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE,
                     0.02, 0, 0.06, COL_BG, COL_INK, 1, 0, 0, m, opt, 1.0, 0.9, 2.0, 0.0, tcol, text, NULL, NULL, NULL,
                     NULL, lcol, lsty, lwid, scol, sscale, snum, sym);

    }
    return plot_end(path, tmp, w, h);
}
