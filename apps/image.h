/* apps/image.h — pictures: image grids as PNG (libpng), and reading them back for tests. */
#ifndef NB_APPS_IMAGE_H
#define NB_APPS_IMAGE_H

#include "nabla/nabla.h"

/* A grid of rows × cols images, each channels × height × width with values in [0, 1] (clipped),
 * separated by `pad` pixels of the border colour (0-255). Images come from t, whose first dim
 * indexes them in row-major grid order (f32 or f64, any trailing shape of channels·height·width
 * values); missing cells stay border-coloured. 1 channel: 8-bit grey; 3 channels: RGB.
 * `scale` enlarges each pixel to scale × scale. Writes atomically (temporary file, rename).
 * Values are read channels-first (image k, channel c, row y, column x at
 * ((k·channels + c)·height + y)·width + x); a value v becomes round(clip(v, 0, 1)·255), NaN 0.
 * The picture is cols·width·scale + (cols + 1)·pad pixels wide and
 * rows·height·scale + (rows + 1)·pad high; cell (r, c) starts at
 * x = pad + c·(width·scale + pad), y = pad + r·(height·scale + pad).
 * NB_ERR_ARG for a bad size or count, NB_ERR_SHAPE when numel(t) is not dim0 × channels·height·width
 * or t has more than rows·cols images, NB_ERR_IO (message names the path) when writing fails. */
nb_status img_write_grid(const char *path, const nb_tensor *t, int rows, int cols, int channels,
                         int height, int width, int pad, int border, int scale);

/* Several grids stacked vertically (e.g. originals above reconstructions), each `rows_i` rows,
 * all with the same columns; a gap of `pad` between them. Each grid keeps its own border, so the
 * picture is Σ_i (rows_i·height·scale + (rows_i + 1)·pad) + (n − 1)·pad pixels high, grid i
 * starting where grid i − 1 ended plus pad. img_write_grid is the case n = 1. */
nb_status img_write_stack(const char *path, int n, const nb_tensor *const *ts, const int *rows,
                          int cols, int channels, int height, int width, int pad, int border,
                          int scale);

/* What a picture says about itself, drawn into the PNG (cairo's text, DejaVu Sans): a title on
 * top, a label left of each stacked grid (e.g. "test images", "PCA d=2") and optionally one above
 * each column. Any of them may be NULL; "\n" breaks a label, and a title too wide is wrapped. */
typedef struct img_text {
    const char *title;
    const char *const *row_labels; /* one per grid of the stack */
    const char *const *col_labels; /* one per column */
} img_text;

/* img_write_stack with text: the stack sits in the bottom-right corner, below a band for the
 * title and the column labels and right of a column as wide as the longest row label, so it
 * starts at x = width − stack width, y = height − stack height. The title is wrapped to the
 * picture's width (at least IMG_MIN_TEXT_W pixels wide). Errors as for img_write_stack, and
 * NB_ERR_BACKEND when cairo fails. */
enum { IMG_MIN_TEXT_W = 360 };
nb_status img_write_labelled(const char *path, const img_text *text, int n, const nb_tensor *const *ts,
                             const int *rows, int cols, int channels, int height, int width, int pad,
                             int border, int scale);

/* Reads a PNG's size and channels: 1 grey, 2 grey + alpha, 3 RGB (or palette), 4 RGBA (tests
 * check what apps wrote). Decodes every row, so a truncated file fails: NB_ERR_IO when it cannot
 * be opened, NB_ERR_FORMAT when it is not a complete PNG. */
nb_status img_read_info(const char *path, int *width, int *height, int *channels);

#endif
