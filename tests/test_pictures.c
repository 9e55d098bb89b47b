/* tests/test_pictures.c — apps/image.c and apps/plot.c: grids read back pixel by pixel with
 * libpng's simplified API against the layout in image.h, error paths, and every kind of plot
 * (its size, and that its ink and colours are really there). */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/image.h"
#include "apps/plot.h"
#include "tests/tap.h"

static char dir[64];

static const char *at(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* A PNG as 8-bit grey (channels 1) or RGB (3); NULL if libpng cannot read it. */
static unsigned char *read_png(const char *path, int channels, int *w, int *h)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) return NULL;
    im.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    unsigned char *p = malloc(PNG_IMAGE_SIZE(im));
    if (!p || !png_image_finish_read(&im, NULL, p, 0, NULL)) {
        png_image_free(&im);
        free(p);
        return NULL;
    }
    *w = (int)im.width, *h = (int)im.height;
    return p;
}

static unsigned char byte_of(double v) { return v > 1 ? 255 : v > 0 ? (unsigned char)lround(v * 255) : 0; }

/* The grid layout of image.h worked backwards: which image, channel value covers picture pixel
 * (px, py) of a grid starting at row y0; -1 on the border. */
static int expected(const double *v, int nimg, int rows, int cols, int ch, int hh, int ww, int pad,
                    int scale, int y0, int px, int py, int c)
{
    const int cw = ww * scale + pad, chh = hh * scale + pad;
    const int gx = px - pad, gy = py - y0 - pad;
    if (gx < 0 || gy < 0 || gx % cw >= ww * scale || gy % chh >= hh * scale) return -1;
    const int col = gx / cw, row = gy / chh, k = row * cols + col;
    if (col >= cols || row >= rows || k >= nimg) return -1;
    const int x = gx % cw / scale, y = gy % chh / scale;
    return byte_of(v[((k * ch + c) * hh + y) * ww + x]);
}

/* Compares every pixel of a decoded grid (or one grid of a stack) with the layout. */
static int grid_matches(const unsigned char *p, int pw, const double *v, int nimg, int rows, int cols,
                        int ch, int hh, int ww, int pad, int border, int scale, int y0)
{
    const int gh = rows * hh * scale + (rows + 1) * pad;
    for (int py = y0; py < y0 + gh; py++)
        for (int px = 0; px < pw; px++)
            for (int c = 0; c < ch; c++) {
                const int e = expected(v, nimg, rows, cols, ch, hh, ww, pad, scale, y0, px, py, c);
                if (p[((size_t)py * (size_t)pw + (size_t)px) * (size_t)ch + (size_t)c] != (e < 0 ? border : e)) {
                    tap_diag("pixel (%d, %d) channel %d: %d, want %d", px, py, c,
                             p[((size_t)py * (size_t)pw + (size_t)px) * (size_t)ch + (size_t)c], e < 0 ? border : e);
                    return 0;
                }
            }
    return 1;
}

static int count_tmp_files(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

/* ---- grids ------------------------------------------------------------------------------------ */

enum { H = 5, W = 7, N = 6, PAD = 2, SCALE = 3, BORDER = 128 };

static void test_grid_f32(void)
{
    /* image i is i/10 everywhere but one bright pixel at (y 3, x 5) that marks the orientation */
    float f[N * H * W];
    double v[N * H * W];
    for (int i = 0; i < N * H * W; i++) {
        const int k = i / (H * W), y = i % (H * W) / W, x = i % W;
        v[i] = f[i] = y == 3 && x == 5 ? 1.0f : (float)k / 10;
    }
    nb_tensor t;
    nb_tensor_wrap(&t, NB_F32, 4, (const int64_t[]){N, 1, H, W}, f);
    nb_status st = img_write_grid(at("f32.png"), &t, 2, 3, 1, H, W, PAD, BORDER, SCALE);
    ok(st == NB_OK, "f32 grid written (%s)", st ? nb_last_error() : "");
    int pw = 0, ph = 0, ch = 0;
    st = img_read_info(at("f32.png"), &pw, &ph, &ch);
    ok(!st && pw == 3 * W * SCALE + 4 * PAD && ph == 2 * H * SCALE + 3 * PAD && ch == 1,
       "img_read_info: %d×%d, %d channel(s) = cols·W·scale + (cols+1)·pad by rows·H·scale + (rows+1)·pad, grey", pw, ph, ch);
    unsigned char *p = read_png(at("f32.png"), 1, &pw, &ph);
    ok(p && pw == 71 && ph == 36, "libpng reads it back as 71×36");
    int good = p != NULL;
    for (int k = 0; k < N && good; k++) { /* the centre of each cell, and its marker */
        const int ox = PAD + k % 3 * (W * SCALE + PAD), oy = PAD + k / 3 * (H * SCALE + PAD);
        good &= p[(oy + 2 * SCALE + 1) * pw + ox + 3 * SCALE + 1] == lround(k / 10.0 * 255);
        good &= p[(oy + 3 * SCALE + 2) * pw + ox + 5 * SCALE + 2] == 255;
    }
    ok(good, "image i lands in cell (i / 3, i %% 3): grey round(i/10·255) at the centre, the marker at (3, 5)");
    ok(p && p[0] == BORDER && p[35 * 71 + 70] == BORDER && p[10 * 71 + PAD + W * SCALE] == BORDER,
       "corners and the gap between cells have the border colour");
    ok(p && grid_matches(p, pw, v, N, 2, 3, 1, H, W, PAD, BORDER, SCALE, 0), "every pixel where the layout of image.h puts it");
    free(p);
}

static void test_grid_f64(void)
{
    /* five images in a 2×3 grid (the last cell stays empty), values outside [0, 1] and a NaN */
    double v[5 * H * W];
    for (int i = 0; i < 5 * H * W; i++) v[i] = (double)(i % 13) / 8 - 0.25;
    v[17] = NAN, v[18] = -INFINITY, v[19] = INFINITY, v[40] = 1e30;
    nb_tensor t;
    nb_tensor_wrap(&t, NB_F64, 2, (const int64_t[]){5, H * W}, v);
    nb_status st = img_write_grid(at("f64.png"), &t, 2, 3, 1, H, W, 0, 7, 1);
    ok(st == NB_OK, "f64 grid, pad 0, scale 1 written (%s)", st ? nb_last_error() : "");
    int pw = 0, ph = 0;
    unsigned char *p = read_png(at("f64.png"), 1, &pw, &ph);
    ok(p && pw == 3 * W && ph == 2 * H, "pad 0: exactly 3·W × 2·H");
    /* image 0's pixel i is picture pixel (i / W)·3W + i % W; image 1's pixel 5 is picture pixel W + 5 */
    ok(p && p[0] == 0 && p[3] == 32 && p[3 * W + 3] == 255 && p[3 * W + 4] == 255 && p[2 * 3 * W + 3] == 0 &&
           p[2 * 3 * W + 4] == 0 && p[2 * 3 * W + 5] == 255 && p[W + 5] == 255,
       "values clipped to [0, 1]: -0.25 → 0, 0.125 → 32, 1 and 1.125 → 255, NaN and -inf → 0, inf and 1e30 → 255");
    int empty = p != NULL;
    for (int y = H; y < 2 * H && empty; y++)
        for (int x = 2 * W; x < 3 * W; x++) empty &= p[y * pw + x] == 7;
    ok(empty, "the cell with no image is border-coloured");
    ok(p && grid_matches(p, pw, v, 5, 2, 3, 1, H, W, 0, 7, 1, 0), "every pixel of the f64 grid");
    free(p);

    /* a non-contiguous view: every other image of a (10, 35) block, through nb_get */
    double w[10 * H * W];
    for (int i = 0; i < 10 * H * W; i++) w[i] = (double)(i / (H * W)) / 10;
    nb_tensor s;
    nb_tensor_wrap(&s, NB_F64, 2, (const int64_t[]){5, H * W}, w);
    s.stride[0] = 2 * H * W;
    st = img_write_grid(at("strided.png"), &s, 1, 5, 1, H, W, 1, 0, 1);
    p = read_png(at("strided.png"), 1, &pw, &ph);
    int good = !st && p && pw == 5 * W + 6 && ph == H + 2;
    for (int k = 0; k < 5 && good; k++) good &= p[(1 + 2) * pw + 1 + k * (W + 1) + 3] == lround(2 * k / 10.0 * 255);
    ok(good, "a strided view (every other image) is read in logical order");
    free(p);
}

static void test_rgb_and_stack(void)
{
    enum { C = 3, HH = 4, WW = 5 };
    float f[2 * C * HH * WW];
    double v[2 * C * HH * WW];
    for (int i = 0; i < 2 * C * HH * WW; i++) {
        const int k = i / (C * HH * WW), c = i / (HH * WW) % C;
        v[i] = f[i] = k == 0 ? (float)(c + 1) / 4 : (float)(i % 7) / 6;
    }
    nb_tensor t;
    nb_tensor_wrap(&t, NB_F32, 4, (const int64_t[]){2, C, HH, WW}, f);
    nb_status st = img_write_grid(at("rgb.png"), &t, 1, 2, 3, HH, WW, 1, 255, 2);
    int pw = 0, ph = 0, ch = 0;
    st = st ? st : img_read_info(at("rgb.png"), &pw, &ph, &ch);
    ok(!st && ch == 3 && pw == 2 * WW * 2 + 3 && ph == HH * 2 + 2,
       "RGB grid: 3 channels, %d×%d", pw, ph);
    unsigned char *p = read_png(at("rgb.png"), 3, &pw, &ph);
    ok(p && p[(3 * pw + 3) * 3] == 64 && p[(3 * pw + 3) * 3 + 1] == 128 && p[(3 * pw + 3) * 3 + 2] == 191,
       "channels-first: image 0 has R, G, B = 0.25, 0.5, 0.75 → 64, 128, 191");
    ok(p && grid_matches(p, pw, v, 2, 1, 2, 3, HH, WW, 1, 255, 2, 0), "every RGB pixel");
    free(p);

    /* a stack: one row of 3 above two rows of 3 (five images) */
    double a[3 * H * W], b[5 * H * W];
    for (int i = 0; i < 3 * H * W; i++) a[i] = 0.2 + (double)(i % W) / 20;
    for (int i = 0; i < 5 * H * W; i++) b[i] = 0.9 - (double)(i % 11) / 20;
    nb_tensor ta, tb;
    nb_tensor_wrap(&ta, NB_F64, 2, (const int64_t[]){3, H * W}, a);
    nb_tensor_wrap(&tb, NB_F64, 3, (const int64_t[]){5, H, W}, b);
    const nb_tensor *ts[2] = {&ta, &tb};
    st = img_write_stack(at("stack.png"), 2, ts, (const int[]){1, 2}, 3, 1, H, W, PAD, 0, 2);
    p = read_png(at("stack.png"), 1, &pw, &ph);
    const int h1 = H * 2 + 2 * PAD, h2 = 2 * H * 2 + 3 * PAD;
    ok(!st && p && pw == 3 * W * 2 + 4 * PAD && ph == h1 + PAD + h2, "stack of 1 + 2 rows: %d×%d (grid heights + pad)", pw, ph);
    int good = p && grid_matches(p, pw, a, 3, 1, 3, 1, H, W, PAD, 0, 2, 0) &&
               grid_matches(p, pw, b, 5, 2, 3, 1, H, W, PAD, 0, 2, h1 + PAD);
    for (int y = h1; y < h1 + PAD && good; y++)
        for (int x = 0; x < pw; x++) good &= p[y * pw + x] == 0;
    ok(good, "both grids where image.h puts them, the gap between them border-coloured");
    free(p);
}

/* The labelled stack: the same grids, moved to the bottom-right corner, dark text in the title
 * band and in the label column, and nothing else changed. */
static void test_labelled(void)
{
    double a[3 * H * W], b[5 * H * W];
    for (int i = 0; i < 3 * H * W; i++) a[i] = 0.2 + (double)(i % W) / 20;
    for (int i = 0; i < 5 * H * W; i++) b[i] = 0.9 - (double)(i % 11) / 20;
    nb_tensor ta, tb;
    nb_tensor_wrap(&ta, NB_F64, 2, (const int64_t[]){3, H * W}, a);
    nb_tensor_wrap(&tb, NB_F64, 3, (const int64_t[]){5, H, W}, b);
    const nb_tensor *ts[2] = {&ta, &tb};
    const char *rows[2] = {"test images", "PCA d=2\nsecond line"}, *cols[3] = {"t=0", "t=0.5", "t=1"};
    const img_text text = {"A title long enough to be wrapped onto a second line in a narrow picture", rows, cols};
    nb_status st = img_write_labelled(at("labelled.png"), &text, 2, ts, (const int[]){1, 2}, 3, 1, H, W, PAD, 255, 2);
    int pw = 0, ph = 0;
    unsigned char *p = read_png(at("labelled.png"), 1, &pw, &ph);
    const int sw = 3 * W * 2 + 4 * PAD, sh = H * 2 + 2 * PAD + PAD + 2 * H * 2 + 3 * PAD, x0 = pw - sw, y0 = ph - sh;
    ok(!st && p && pw >= IMG_MIN_TEXT_W && x0 > 20 && y0 > 30, "labelled stack: %d×%d, the grids at (%d, %d) (%s)", pw, ph,
       x0, y0, st ? nb_last_error() : "");
    int good = p != NULL, title = 0, label = 0;
    for (int y = 0; good && y < sh; y++) /* the grids, pixel for pixel, in their corner */
        for (int x = 0; x < sw; x++) {
            const int e1 = y < H * 2 + 2 * PAD ? expected(a, 3, 1, 3, 1, H, W, PAD, 2, 0, x, y, 0)
                                               : expected(b, 5, 2, 3, 1, H, W, PAD, 2, H * 2 + 3 * PAD, x, y, 0);
            good &= p[(size_t)(y0 + y) * pw + x0 + x] == (e1 < 0 ? 255 : e1);
        }
    for (int y = 0; p && y < y0; y++)
        for (int x = 0; x < pw; x++) title += p[(size_t)y * pw + x] < 100;
    for (int y = y0; p && y < ph; y++)
        for (int x = 0; x < x0; x++) label += p[(size_t)y * pw + x] < 100;
    ok(good, "the grids are unchanged by the text around them");
    ok(title > 100 && label > 100, "dark text in the title band (%d pixels) and the label column (%d)", title, label);
    free(p);
    st = img_write_labelled(at("plain.png"), NULL, 1, ts, (const int[]){1}, 3, 1, H, W, PAD, 255, 2);
    int w2 = 0, h2 = 0, c2 = 0;
    ok(!st && !img_read_info(at("plain.png"), &w2, &h2, &c2) && w2 == sw && h2 == H * 2 + 2 * PAD,
       "no text: exactly img_write_stack's picture size");
    ok(img_write_labelled(at("bad.png"), &text, 2, ts, (const int[]){1, 0}, 3, 1, H, W, PAD, 255, 2) == NB_ERR_ARG &&
       access(at("bad.png"), F_OK) != 0, "a grid of 0 rows: NB_ERR_ARG, no file");
}

static void test_image_errors(void)
{
    float f[N * H * W] = {0};
    nb_tensor t;
    nb_tensor_wrap(&t, NB_F32, 2, (const int64_t[]){N, H * W}, f);
    char path[300];
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", dir);
    nb_status st = img_write_grid(path, &t, 2, 3, 1, H, W, PAD, 0, 1);
    ok(st == NB_ERR_IO && strstr(nb_last_error(), path), "missing directory: NB_ERR_IO naming the path (%s)", nb_last_error());

    /* the final name is a directory: the temporary file is written, the rename fails */
    mkdir(at("adir.png"), 0755);
    st = img_write_grid(at("adir.png"), &t, 2, 3, 1, H, W, PAD, 0, 1);
    ok(st == NB_ERR_IO && strstr(nb_last_error(), at("adir.png")) && count_tmp_files() == 0,
       "rename onto a directory fails: NB_ERR_IO, no temporary file left (%s)", nb_last_error());
    rmdir(at("adir.png"));

    nb_tensor bad;
    nb_tensor_wrap(&bad, NB_F32, 2, (const int64_t[]){N, H * W - 1}, f);
    st = img_write_grid(at("bad.png"), &bad, 2, 3, 1, H, W, PAD, 0, 1);
    ok(st == NB_ERR_SHAPE && access(at("bad.png"), F_OK) != 0, "(6, 34) for 5×7 images: NB_ERR_SHAPE, no file");
    st = img_write_grid(at("bad.png"), &t, 1, 5, 1, H, W, PAD, 0, 1);
    ok(st == NB_ERR_SHAPE, "6 images for 5 cells: NB_ERR_SHAPE");
    ok(img_write_grid(at("bad.png"), &t, 2, 3, 1, H, W, PAD, 0, 17) == NB_ERR_ARG &&
       img_write_grid(at("bad.png"), &t, 2, 3, 2, H, W, PAD, 0, 1) == NB_ERR_ARG &&
       img_write_grid(at("bad.png"), &t, 0, 3, 1, H, W, PAD, 0, 1) == NB_ERR_ARG &&
       img_write_grid(at("bad.png"), &t, 2, 3, 1, H, W, PAD, 256, 1) == NB_ERR_ARG &&
       access(at("bad.png"), F_OK) != 0,
       "scale 17, 2 channels, 0 rows, border 256: NB_ERR_ARG");

    int w, h, c;
    FILE *fp = fopen(at("not.png"), "w");
    if (fp) fputs("not a picture at all", fp), fclose(fp);
    ok(img_read_info(at("not.png"), &w, &h, &c) == NB_ERR_FORMAT, "img_read_info of a text file: NB_ERR_FORMAT");
    ok(img_read_info(at("none.png"), &w, &h, &c) == NB_ERR_IO, "img_read_info of a missing file: NB_ERR_IO");
    /* the first half of a real PNG */
    fp = fopen(at("f32.png"), "rb");
    unsigned char buf[4096];
    const size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp) fclose(fp);
    fp = fopen(at("half.png"), "wb");
    if (fp) fwrite(buf, 1, n / 2, fp), fclose(fp);
    ok(n > 100 && img_read_info(at("half.png"), &w, &h, &c) == NB_ERR_FORMAT, "a truncated PNG: NB_ERR_FORMAT");
}

/* ---- plots ------------------------------------------------------------------------------------ */

/* Pixels of a plot within tol of colour (r, g, b) in every channel. */
static long count_colour(const char *path, int r, int g, int b, int tol)
{
    int w, h;
    unsigned char *p = read_png(path, 3, &w, &h);
    long n = 0;
    for (long i = 0; p && i < (long)w * h; i++)
        n += abs(p[3 * i] - r) <= tol && abs(p[3 * i + 1] - g) <= tol && abs(p[3 * i + 2] - b) <= tol;
    free(p);
    return p ? n : -1;
}

static int size_is(const char *path, int w, int h)
{
    int pw = 0, ph = 0, c = 0;
    const nb_status st = img_read_info(path, &pw, &ph, &c);
    if (st || pw != w || ph != h) tap_diag("%s: %s, %d×%d", path, st ? nb_last_error() : "read", pw, ph);
    return !st && pw == w && ph == h;
}

static void test_plots(void)
{
    double x[40], y1[40], y2[40];
    for (int i = 0; i < 40; i++) x[i] = i + 1, y1[i] = 300 * exp(-i / 10.0) + 20, y2[i] = 320 * exp(-i / 12.0) + 30;
    y2[7] = NAN, y2[8] = INFINITY; /* a gap in the test curve */
    const plot_series s[2] = {{"train", x, y1, 40, 0}, {"test", x, y2, 40, 1}};
    nb_status st = plot_lines(at("lines.png"), "loss", "epoch", "nats", 2, s, 0);
    ok(!st && size_is(at("lines.png"), 900, 560), "plot_lines with a NaN and an inf: 900×560 (%s)", st ? nb_last_error() : "");
    ok(count_colour(at("lines.png"), 0, 0, 0, 80) > 1000, "its axes and labels are dark, not white on white");
    ok(count_colour(at("lines.png"), 31, 119, 180, 12) > 100 && count_colour(at("lines.png"), 255, 127, 14, 12) > 50,
       "both series drawn in their colours");
    st = plot_lines(at("lines_log.png"), "loss (log)", "epoch", "nats", 2, s, 1);
    ok(!st && size_is(at("lines_log.png"), 900, 560), "a second plot in the same process (log y) works too");

    /* degenerate data: a flat series, one point, an empty series, all-NaN */
    const double flat[3] = {5, 5, 5}, nan3[3] = {NAN, NAN, NAN};
    const plot_series d[4] = {{"flat", flat, flat, 3, 0}, {"one", x, y1, 1, 0}, {"none", NULL, NULL, 0, 1}, {NULL, nan3, nan3, 3, 0}};
    st = plot_lines(at("flat.png"), NULL, NULL, NULL, 4, d, 1);
    ok(!st && size_is(at("flat.png"), 900, 560), "all-equal, single, empty and all-NaN series (%s)", st ? nb_last_error() : "");
    ok(plot_lines(at("empty.png"), "nothing", "x", "y", 0, NULL, 0) == NB_OK && size_is(at("empty.png"), 900, 560),
       "no series at all still gives axes");

    const plot_series p[6] = {{"train", x, y1, 40, 0}, {"test", x, y2, 40, 1}, {"train", x, y2, 40, 0},
                              {"test", x, y1, 40, 1},  {"train", x, y1, 20, 0}, {"test", x, y2, 20, 1}};
    const char *titles[3] = {"-ELBO", "reconstruction", "KL"};
    const char *ylabels[3] = {"nats per image", "nats per image", "nats per image"};
    st = plot_panels(at("panels.png"), 3, titles, "epoch", ylabels, (const int[]){2, 2, 2}, p);
    ok(!st && size_is(at("panels.png"), 3 * 450, 420), "plot_panels: three panels, 1350×420 (%s)", st ? nb_last_error() : "");

    enum { NP = 1000 };
    static double px[NP], py[NP];
    static int lab[NP];
    for (int i = 0; i < NP; i++) {
        lab[i] = i % 10;
        px[i] = cos(lab[i] * 0.628) * 3 + sin(i * 1.7) * 0.6, py[i] = sin(lab[i] * 0.628) * 3 + cos(i * 2.3) * 0.6;
    }
    px[5] = NAN;
    const char *names[10] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"};
    st = plot_scatter(at("scatter.png"), "codes", "z1", "z2", px, py, lab, NP, 10, names);
    ok(!st && size_is(at("scatter.png"), 900, 560), "plot_scatter with 10 labels (%s)", st ? nb_last_error() : "");
    static const int tab10[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
                                     {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
    int colours = 0;
    for (int k = 0; k < 10; k++) colours += count_colour(at("scatter.png"), tab10[k][0], tab10[k][1], tab10[k][2], 12) > 40;
    ok(colours == 10, "all ten label colours appear (%d)", colours);
    ok(plot_scatter(at("scatter0.png"), NULL, NULL, NULL, NULL, NULL, NULL, 0, 3, NULL) == NB_OK && size_is(at("scatter0.png"), 900, 560),
       "a scatter of no points, default label names");
    lab[3] = 10;
    ok(plot_scatter(at("badlab.png"), "x", NULL, NULL, px, py, lab, NP, 10, names) == NB_ERR_ARG && access(at("badlab.png"), F_OK) != 0,
       "a label outside 0..nlabels-1: NB_ERR_ARG before PLplot starts, no file");

    enum { G = 9 };
    double x0[G * G], y0[G * G], x1[G * G], y1a[G * G], cx[200], cy[200];
    for (int i = 0; i < G * G; i++) {
        x0[i] = -1.6 + 3.2 * (i % G) / (G - 1), y0[i] = -1.6 + 3.2 * (i / G) / (G - 1);
        const double r = hypot(x0[i], y0[i]);
        x1[i] = r > 0 ? x0[i] / r : 0, y1a[i] = r > 0 ? y0[i] / r : 0;
    }
    for (int i = 0; i < 200; i++) cx[i] = cos(i * 0.0314), cy[i] = sin(i * 0.0314);
    const char *pn[2] = {"A", "B"};
    const plot_layer layers[3] = {{.label = "cloud", .x = cx, .y = cy, .n = 200, .colour = 0},
                                  {.label = "map", .style = PLOT_ARROWS, .x = x0, .y = y0, .x1 = x1, .y1 = y1a, .n = G * G, .colour = 1},
                                  {.label = "named", .x = x0, .y = y0, .n = 2, .colour = 2, .size = 1, .names = pn}};
    const plot_layer line = {.label = "circle", .style = PLOT_LINE, .x = cx, .y = cy, .n = 200, .colour = 4};
    const plot_panel one = {"denoising map", "x1", "x2", 3, layers};
    st = plot_layers(at("arrows.png"), 1, &one);
    ok(!st && size_is(at("arrows.png"), 900, 560), "plot_layers: arrows over a cloud, named points (%s)", st ? nb_last_error() : "");
    ok(count_colour(at("arrows.png"), 31, 119, 180, 12) > 200 && count_colour(at("arrows.png"), 190, 190, 190, 12) > 50,
       "arrows (blue) and the cloud (grey) are drawn");
    const plot_panel three[3] = {{"a", "x", "y", 1, &line}, {"b", "x", "y", 3, layers}, {"c", NULL, NULL, 0, NULL}};
    st = plot_layers(at("maps.png"), 3, three);
    ok(!st && size_is(at("maps.png"), 3 * 450, 420) && count_colour(at("maps.png"), 214, 39, 40, 12) > 100,
       "plot_layers: three panels, a polyline in its colour, an empty panel (%s)", st ? nb_last_error() : "");
    const plot_layer broken = {.style = PLOT_ARROWS, .x = x0, .y = y0, .n = 3};
    ok(plot_layers(at("bad.png"), 1, &(plot_panel){"x", NULL, NULL, 1, &broken}) == NB_ERR_ARG &&
       access(at("bad.png"), F_OK) != 0, "arrows without heads: NB_ERR_ARG, no file");

    char path[300];
    snprintf(path, sizeof path, "%s/no/such/dir/plot.png", dir);
    st = plot_lines(path, "x", "x", "y", 2, s, 0);
    ok(st == NB_ERR_IO && strstr(nb_last_error(), path), "a plot into a missing directory: NB_ERR_IO naming the path");
    ok(plot_panels(at("p.png"), 0, NULL, NULL, NULL, (const int[]){1}, p) == NB_ERR_ARG &&
       plot_lines(at("p.png"), NULL, NULL, NULL, 1, (const plot_series[]){{"bad", NULL, NULL, 3, 0}}, 0) == NB_ERR_ARG,
       "0 panels, a series with n = 3 and no data: NB_ERR_ARG");
    ok(count_tmp_files() == 0, "no temporary files left behind");
}

/* Removes the files this test wrote, then the directory; true if that worked. */
static int remove_dir(void)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(at(e->d_name));
    if (d) closedir(d);
    return rmdir(dir) == 0;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/nb_pictures.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_grid_f32();
    test_grid_f64();
    test_rgb_and_stack();
    test_labelled();
    test_image_errors();
    test_plots();
    if (getenv("NB_KEEP_PICTURES")) /* to look at them */
        tap_diag("pictures kept in %s", dir);
    else
        ok(remove_dir(), "temporary directory removed");
    return tap_done();
}
