/* apps/image.c — image grids as PNG with libpng, their titles and labels drawn with cairo; see
 * image.h for the layout. */
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/image.h"
#include "tensor/error.h"
#include "tensor/file.h"

/* libpng's own limit on a side (PNG_USER_WIDTH_MAX); also keeps the pixel count in int64. */
enum { IMG_MAX_SIDE = 1000000 };

/* libpng reports errors through a callback that must not return: keep the message, jump back. */
static void png_fail(png_structp png, png_const_charp msg)
{
    snprintf(png_get_error_ptr(png), 256, "%s", msg);
    png_longjmp(png, 1);
}

static void png_quiet(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* One 8-bit PNG (grey or RGB) from packed rows; msg (256 bytes) gets libpng's complaint. */
static int png_encode(FILE *f, const unsigned char *pix, int w, int h, int ch, char *msg)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, msg, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(msg, 256, "out of memory");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) { /* png and info are not changed below, so need no volatile */
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 ch == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, pix + (size_t)y * (size_t)w * (size_t)ch);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

/* Writes <path>.tmp.XXXXXX, then renames it over path, so a reader never sees half a picture. */
static nb_status write_png_atomic(const char *path, const unsigned char *pix, int w, int h, int ch)
{
    char *tmp, why[256] = "";
    const int fd = nb_tmp_create(path, &tmp);
    if (fd < 0) return NB_ERR_IO;
    FILE *f = fdopen(fd, "wb");
    if (!f) snprintf(why, sizeof why, "%s", strerror(errno)), close(fd);
    if (f && png_encode(f, pix, w, h, ch, why) && !why[0]) snprintf(why, sizeof why, "write error");
    if (f && fclose(f) && !why[0]) snprintf(why, sizeof why, "%s", strerror(errno));
    nb_status st = nb_tmp_finish(path, tmp, !why[0]);
    if (why[0]) st = nb_error(NB_ERR_IO, "%s: cannot write the PNG: %s", path, why);
    return st;
}

/* Element i of t in logical order; the direct read is the common (contiguous) case. */
static double value_at(const nb_tensor *t, int contig, int64_t i)
{
    if (!contig) return nb_get(t, i);
    return t->dtype == NB_F32 ? (double)((const float *)t->data)[i] : ((const double *)t->data)[i];
}

static unsigned char to_byte(double v)
{
    if (!(v > 0)) return 0; /* also NaN */
    if (v >= 1) return 255;
    return (unsigned char)(v * 255 + 0.5);
}

/* Paints the images of t into the cells of a grid whose top-left corner is at row y0. */
static void paint_grid(unsigned char *pix, int64_t pw, int64_t y0, const nb_tensor *t, int channels,
                       int height, int width, int pad, int scale, int cols)
{
    const int contig = nb_is_contiguous(t);
    const int64_t per = (int64_t)channels * height * width, nimg = t->ndim ? nb_dim(t, 0) : 0;
    for (int64_t k = 0; k < nimg; k++) {
        const int64_t cx = pad + (k % cols) * ((int64_t)width * scale + pad);
        const int64_t cy = y0 + pad + (k / cols) * ((int64_t)height * scale + pad);
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++) {
                    const unsigned char b = to_byte(value_at(t, contig, k * per + ((int64_t)c * height + y) * width + x));
                    for (int dy = 0; dy < scale; dy++) {
                        unsigned char *row = pix + ((cy + (int64_t)y * scale + dy) * pw + cx + (int64_t)x * scale) * channels;
                        for (int dx = 0; dx < scale; dx++) row[dx * channels + c] = b;
                    }
                }
    }
}

/* Checks the stack and measures it: *pw × *ph pixels. */
static nb_status stack_size(const char *path, int n, const nb_tensor *const *ts, const int *rows, int cols,
                            int channels, int height, int width, int pad, int border, int scale, int64_t *pw_,
                            int64_t *ph_)
{
    if (!path || !ts || !rows || n < 1)
        return nb_error(NB_ERR_ARG, "img_write_stack: NULL path, tensors or rows, or n = %d < 1", n);
    if (cols < 1 || (channels != 1 && channels != 3) || height < 1 || width < 1 || pad < 0 ||
        border < 0 || border > 255 || scale < 1 || scale > 16)
        return nb_error(NB_ERR_ARG, "%s: bad picture arguments: cols %d, channels %d (1 or 3), %d×%d, "
                        "pad %d, border %d (0-255), scale %d (1-16)", path, cols, channels, height,
                        width, pad, border, scale);
    const int64_t per = (int64_t)channels * height * width;
    const int64_t pw = (int64_t)cols * width * scale + (int64_t)(cols + 1) * pad;
    int64_t ph = (int64_t)(n - 1) * pad;
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = ts[i];
        if (!t || rows[i] < 1)
            return nb_error(NB_ERR_ARG, "%s: grid %d: %s", path, i, t ? "rows < 1" : "NULL tensor");
        if (t->dtype != NB_F32 && t->dtype != NB_F64)
            return nb_error(NB_ERR_DTYPE, "%s: grid %d: not f32 or f64", path, i);
        const int64_t nimg = t->ndim ? nb_dim(t, 0) : 0;
        char s[64];
        if (t->ndim < 1 || nb_numel(t) != nimg * per || nimg > (int64_t)rows[i] * cols)
            return nb_error(NB_ERR_SHAPE, "%s: grid %d: shape %s is not up to %d×%d images of %d×%d×%d "
                            "values", path, i, nb_shape_str(t, s, sizeof s), rows[i], cols, channels,
                            height, width);
        ph += (int64_t)rows[i] * height * scale + (int64_t)(rows[i] + 1) * pad;
        if (ph > IMG_MAX_SIDE) break;
    }
    if (pw > IMG_MAX_SIDE || ph > IMG_MAX_SIDE)
        return nb_error(NB_ERR_ARG, "%s: picture too large (more than %d pixels a side)", path, IMG_MAX_SIDE);
    *pw_ = pw, *ph_ = ph;
    return NB_OK;
}

/* Paints the stack into pix (pw wide, channels per pixel), its top-left corner at (x0, y0). */
static void paint_stack(unsigned char *pix, int64_t pw, int64_t x0, int64_t y0, int n, const nb_tensor *const *ts,
                        const int *rows, int cols, int channels, int height, int width, int pad, int scale)
{
    for (int i = 0; i < n; y0 += rows[i] * (height * scale + pad) + 2 * pad, i++)
        paint_grid(pix + x0 * channels, pw, y0, ts[i], channels, height, width, pad, scale, cols);
}

nb_status img_write_stack(const char *path, int n, const nb_tensor *const *ts, const int *rows,
                          int cols, int channels, int height, int width, int pad, int border,
                          int scale)
{
    int64_t pw = 0, ph = 0;
    nb_status st0 = stack_size(path, n, ts, rows, cols, channels, height, width, pad, border, scale, &pw, &ph);
    if (st0) return st0;
    unsigned char *pix = malloc((size_t)(pw * ph * channels));
    if (!pix) return nb_error(NB_ERR_NOMEM, "%s: out of memory for %lld×%lld pixels", path, (long long)pw, (long long)ph);
    memset(pix, border, (size_t)(pw * ph * channels));
    paint_stack(pix, pw, 0, 0, n, ts, rows, cols, channels, height, width, pad, scale);
    const nb_status st = write_png_atomic(path, pix, (int)pw, (int)ph, channels);
    free(pix);
    return st;
}

nb_status img_write_grid(const char *path, const nb_tensor *t, int rows, int cols, int channels,
                         int height, int width, int pad, int border, int scale)
{
    return img_write_stack(path, 1, &t, &rows, cols, channels, height, width, pad, border, scale);
}

nb_status img_read_info(const char *path, int *width, int *height, int *channels)
{
    if (!path || !width || !height || !channels) return nb_error(NB_ERR_ARG, "img_read_info: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return nb_error(NB_ERR_IO, "%s: %s", path, strerror(errno));
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
        fclose(f);
        return nb_error(NB_ERR_FORMAT, "%s: not a PNG file", path);
    }
    char msg[256] = "out of memory";
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, msg, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    unsigned char *volatile row = NULL; /* set after setjmp: volatile keeps it across longjmp */
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(row);
        fclose(f);
        return nb_error(NB_ERR_FORMAT, "%s: %s", path, msg);
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    const int type = png_get_color_type(png, info);
    const int ch = type == PNG_COLOR_TYPE_PALETTE ? 3 + !!png_get_valid(png, info, PNG_INFO_tRNS)
                                                  : png_get_channels(png, info);
    /* decode every row (and discard it), so that a truncated or corrupt file is caught here */
    const int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const png_uint_32 h = png_get_image_height(png, info);
    row = malloc(png_get_rowbytes(png, info));
    if (!row) png_error(png, "out of memory");
    for (int p = 0; p < passes; p++)
        for (png_uint_32 y = 0; y < h; y++) png_read_row(png, row, NULL);
    png_read_end(png, NULL);
    *width = (int)png_get_image_width(png, info), *height = (int)h, *channels = ch;
    png_destroy_read_struct(&png, &info, NULL);
    free(row);
    fclose(f);
    return NB_OK;
}

/* ---- text: titles and labels with cairo ----------------------------------------------------- */

/* Letter sizes in pixels, and the gaps around text. */
enum { TITLE_PX = 16, LABEL_PX = 13, COL_PX = 12, MIN_COL_PX = 8, GAP = 6, MAX_LINES = 8 };

typedef struct text_style {
    double size;
    int bold;
} text_style;

static void use_style(cairo_t *cr, text_style s)
{
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           s.bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, s.size);
}

static double text_w(cairo_t *cr, const char *s)
{
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    return te.x_advance;
}

/* Splits s into lines at "\n", and wraps each at spaces to max_w pixels (0: no wrapping). */
static int split_lines(cairo_t *cr, const char *s, double max_w, char lines[MAX_LINES][256])
{
    int n = 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s ? s : "");
    char *save = NULL;
    for (char *para = strtok_r(buf, "\n", &save); para && n < MAX_LINES; para = strtok_r(NULL, "\n", &save)) {
        char line[256] = "";
        char *wsave = NULL;
        for (char *word = strtok_r(para, " ", &wsave); word; word = strtok_r(NULL, " ", &wsave)) {
            char trial[256];
            snprintf(trial, sizeof trial, "%s%s%s", line, line[0] ? " " : "", word);
            if (max_w > 0 && line[0] && text_w(cr, trial) > max_w) {
                if (n == MAX_LINES) break;
                snprintf(lines[n++], 256, "%s", line);
                snprintf(line, sizeof line, "%s", word);
            } else {
                snprintf(line, sizeof line, "%s", trial);
            }
        }
        if (n < MAX_LINES) snprintf(lines[n++], 256, "%s", line);
    }
    return n;
}

static double line_h(cairo_t *cr)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    return fe.height;
}

/* Lines of text centred on cx (or left-aligned at x when cx < 0) with their block centred on cy. */
static void draw_lines(cairo_t *cr, int n, char lines[MAX_LINES][256], double x, double cx, double cy)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double y = cy - n * fe.height / 2 + fe.ascent;
    for (int i = 0; i < n; i++, y += fe.height) {
        cairo_move_to(cr, cx >= 0 ? cx - text_w(cr, lines[i]) / 2 : x, y);
        cairo_show_text(cr, lines[i]);
    }
}

static nb_status cairo_fail(const char *path, cairo_status_t s)
{
    return nb_error(s == CAIRO_STATUS_NO_MEMORY ? NB_ERR_NOMEM : NB_ERR_BACKEND, "%s: cairo: %s", path,
                    cairo_status_to_string(s));
}

nb_status img_write_labelled(const char *path, const img_text *text, int n, const nb_tensor *const *ts,
                             const int *rows, int cols, int channels, int height, int width, int pad,
                             int border, int scale)
{
    int64_t sw, sh;
    nb_status st = stack_size(path, n, ts, rows, cols, channels, height, width, pad, border, scale, &sw, &sh);
    if (st) return st;
    const img_text none = {0};
    if (!text) text = &none;
    /* measure on a scratch surface: the label column, the column labels' size, the title's lines */
    cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *cr = cairo_create(scratch);
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY); /* no colour fringes in grey pictures */
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_SLIGHT);
    cairo_set_font_options(cr, fo);
    const text_style title_s = {TITLE_PX, 1}, label_s = {LABEL_PX, 0};
    char lines[MAX_LINES][256];
    double label_w = 0;
    use_style(cr, label_s);
    for (int i = 0; text->row_labels && i < n; i++) {
        const int k = split_lines(cr, text->row_labels[i], 0, lines);
        for (int j = 0; j < k; j++) label_w = fmax(label_w, text_w(cr, lines[j]));
    }
    const int64_t lw = label_w > 0 ? (int64_t)ceil(label_w) + 2 * GAP : 0;
    /* column labels shrink until the widest fits its cell */
    const double cell = (double)width * scale + pad;
    text_style col_s = {COL_PX, 0};
    int col_lines = 0;
    for (; text->col_labels && col_s.size >= MIN_COL_PX; col_s.size -= 1) {
        use_style(cr, col_s);
        double widest = 0;
        col_lines = 0;
        for (int c = 0; c < cols; c++) {
            const int k = split_lines(cr, text->col_labels[c], 0, lines);
            col_lines = k > col_lines ? k : col_lines;
            for (int j = 0; j < k; j++) widest = fmax(widest, text_w(cr, lines[j]));
        }
        if (widest <= cell - 2) break;
    }
    if (col_s.size < MIN_COL_PX) col_s.size = MIN_COL_PX;
    use_style(cr, col_s);
    const double col_band = text->col_labels ? col_lines * line_h(cr) + GAP : 0;
    int64_t pw = lw + sw;
    if (text->title && pw < IMG_MIN_TEXT_W) pw = IMG_MIN_TEXT_W;
    use_style(cr, title_s);
    const int tlines = text->title ? split_lines(cr, text->title, (double)pw - 2 * GAP, lines) : 0;
    const double title_band = tlines ? tlines * line_h(cr) + 2 * GAP : 0;
    const int64_t top = (int64_t)ceil(title_band + col_band + (text->col_labels && !tlines ? GAP : 0));
    const int64_t ph = top + sh;
    cairo_destroy(cr);
    cairo_surface_destroy(scratch);
    if (pw > IMG_MAX_SIDE || ph > IMG_MAX_SIDE) {
        cairo_font_options_destroy(fo);
        return nb_error(NB_ERR_ARG, "%s: picture too large (more than %d pixels a side)", path, IMG_MAX_SIDE);
    }

    /* the images first, byte by byte as img_write_stack paints them, then the text over the margins */
    unsigned char *pix = malloc((size_t)(pw * ph * channels));
    if (!pix) {
        cairo_font_options_destroy(fo);
        return nb_error(NB_ERR_NOMEM, "%s: out of memory for %lld×%lld pixels", path, (long long)pw, (long long)ph);
    }
    memset(pix, border, (size_t)(pw * ph * channels));
    paint_stack(pix, pw, pw - sw, top, n, ts, rows, cols, channels, height, width, pad, scale);
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)pw, (int)ph);
    cr = cairo_create(surf);
    st = cairo_status(cr) ? cairo_fail(path, cairo_status(cr)) : NB_OK;
    if (!st) {
        const int stride = cairo_image_surface_get_stride(surf);
        unsigned char *d = cairo_image_surface_get_data(surf);
        cairo_surface_flush(surf);
        for (int64_t y = 0; y < ph; y++)
            for (int64_t x = 0; x < pw; x++) {
                const unsigned char *q = pix + (y * pw + x) * channels;
                const uint32_t r = q[0], g = q[channels == 3], b = q[channels == 3 ? 2 : 0];
                *(uint32_t *)(d + y * stride + x * 4) = r << 16 | g << 8 | b;
            }
        cairo_surface_mark_dirty(surf);
        cairo_set_font_options(cr, fo);
        cairo_set_source_rgb(cr, 0, 0, 0);
        if (tlines) {
            use_style(cr, title_s);
            const int k = split_lines(cr, text->title, (double)pw - 2 * GAP, lines);
            draw_lines(cr, k, lines, GAP, -1, title_band / 2);
        }
        if (text->col_labels) {
            use_style(cr, col_s);
            for (int c = 0; c < cols; c++) {
                const int k = split_lines(cr, text->col_labels[c], 0, lines);
                const double cx = (double)(pw - sw) + pad + c * cell + (double)width * scale / 2;
                draw_lines(cr, k, lines, 0, cx, top - col_band / 2 - GAP / 2.0);
            }
        }
        use_style(cr, label_s);
        int64_t y0 = top;
        for (int i = 0; i < n; i++) {
            const int64_t gh = (int64_t)rows[i] * (height * scale + pad) + pad;
            if (text->row_labels && text->row_labels[i]) {
                const int k = split_lines(cr, text->row_labels[i], 0, lines);
                draw_lines(cr, k, lines, GAP, -1, (double)y0 + gh / 2.0);
            }
            y0 += gh + pad;
        }
        cairo_surface_flush(surf);
        if (cairo_status(cr)) st = cairo_fail(path, cairo_status(cr));
        for (int64_t y = 0; !st && y < ph; y++) /* back to grey or RGB bytes */
            for (int64_t x = 0; x < pw; x++) {
                const uint32_t v = *(const uint32_t *)(d + y * stride + x * 4);
                unsigned char *q = pix + (y * pw + x) * channels;
                if (channels == 1) {
                    q[0] = (unsigned char)(v & 255);
                } else {
                    q[0] = (unsigned char)(v >> 16 & 255), q[1] = (unsigned char)(v >> 8 & 255);
                    q[2] = (unsigned char)(v & 255);
                }
            }
    }
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    cairo_font_options_destroy(fo);
    if (!st) st = write_png_atomic(path, pix, (int)pw, (int)ph, channels);
    free(pix);
    return st;
}
