/* apps/image.c — image grids as PNG with libpng; see image.h for the layout. */
#include <errno.h>
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

nb_status img_write_stack(const char *path, int n, const nb_tensor *const *ts, const int *rows,
                          int cols, int channels, int height, int width, int pad, int border,
                          int scale)
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

    unsigned char *pix = malloc((size_t)(pw * ph * channels));
    if (!pix) return nb_error(NB_ERR_NOMEM, "%s: out of memory for %lld×%lld pixels", path, (long long)pw, (long long)ph);
    memset(pix, border, (size_t)(pw * ph * channels));
    for (int i = 0, y0 = 0; i < n; y0 += rows[i] * (height * scale + pad) + 2 * pad, i++)
        paint_grid(pix, pw, y0, ts[i], channels, height, width, pad, scale, cols);
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
