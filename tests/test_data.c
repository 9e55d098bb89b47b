/* tests/test_data.c — IDX reading (raw and gzip, every corruption we can think of), dataset views
 * and shuffles, conversion to tensors with each binarisation, one-hot labels, the batcher, and
 * Fashion-MNIST itself when it is installed. Files are synthetic, in a fresh temporary dir. */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "nabla/nn.h"
#include "tests/tap.h"

static char tmpdir[] = "/tmp/nb_test_data_XXXXXX";

/* ---- writing IDX files ---------------------------------------------------------------------- */

typedef struct bytes {
    uint8_t *p;
    size_t n;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    b->p = realloc(b->p, b->n + n);
    if (!b->p) abort();
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_be32(bytes *b, uint32_t v)
{
    const uint8_t q[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, q, 4);
}

/* An IDX file: magic, nd sizes, then ndata bytes of data (which need not match the sizes). */
static bytes idx(uint32_t magic, int nd, const uint32_t *dims, const uint8_t *data, size_t ndata)
{
    bytes b = {0};
    put_be32(&b, magic);
    for (int i = 0; i < nd; i++) put_be32(&b, dims[i]);
    if (ndata) put(&b, data, ndata);
    return b;
}

/* Writes b to tmpdir/name, gzipped when the name ends in .gz; frees b. Returns the path. */
static const char *write_file(const char *name, bytes b)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    size_t len = strlen(name);
    int good;
    if (len > 3 && strcmp(name + len - 3, ".gz") == 0) {
        gzFile f = gzopen(path, "wb");
        good = f && (b.n == 0 || gzwrite(f, b.p, (unsigned)b.n) == (int)b.n);
        good &= f && gzclose(f) == Z_OK;
    } else {
        FILE *f = fopen(path, "wb");
        good = f && fwrite(b.p, 1, b.n, f) == b.n;
        good &= f && fclose(f) == 0;
    }
    if (!good) {
        fprintf(stderr, "test_data: cannot write %s\n", path);
        exit(1);
    }
    free(b.p);
    return path;
}

/* Cuts tmpdir/name to its first n bytes. */
static void cut_file(const char *name, long n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    if (truncate(path, n) != 0) {
        fprintf(stderr, "test_data: cannot truncate %s\n", path);
        exit(1);
    }
}

/* n images of r x c whose every pixel is image i's value pix(i), and labels lab(i). */
static uint8_t pix(int64_t i) { return (uint8_t)(i * 37 + 11); }
static uint8_t lab(int64_t i) { return (uint8_t)(i % 7); }

static void write_set(const char *split, const char *suffix, uint32_t n, uint32_t r, uint32_t c,
                      int labels)
{
    char name[256];
    uint8_t *img = malloc((size_t)n * r * c), *lb = malloc(n);
    for (uint32_t i = 0; i < n; i++) {
        memset(img + (size_t)i * r * c, pix(i), (size_t)r * c);
        img[(size_t)i * r * c] = lab(i); /* the first pixel carries the label too */
        lb[i] = lab(i);
    }
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", split, suffix);
    write_file(name, idx(0x803, 3, (const uint32_t[]){n, r, c}, img, (size_t)n * r * c));
    if (labels) {
        snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", split, suffix);
        write_file(name, idx(0x801, 1, (const uint32_t[]){n}, lb, n));
    }
    free(img);
    free(lb);
}

static int check_set(const nb_dataset *ds, int64_t n, int r, int c)
{
    int good = ds->n == n && ds->channels == 1 && ds->rows == r && ds->cols == c && ds->owned &&
               ds->labels && ds->nclasses == (n >= 7 ? 7 : n);
    for (int64_t i = 0; good && i < n; i++) {
        const uint8_t *im = ds->images + i * r * c;
        good &= ds->labels[i] == lab(i) && im[0] == lab(i);
        for (int k = 1; k < r * c; k++) good &= im[k] == pix(i);
    }
    return good;
}

/* ---- loading -------------------------------------------------------------------------------- */

static void test_load(void)
{
    nb_dataset ds;
    write_set("raw", "", 9, 3, 4, 1);
    nb_status st = nb_dataset_load(&ds, tmpdir, "raw");
    ok(st == NB_OK && check_set(&ds, 9, 3, 4), "raw IDX files: dims, pixels, labels, 7 classes (%s)",
       st ? nb_last_error() : "ok");
    nb_dataset_free(&ds);
    ok(ds.images == NULL && ds.labels == NULL && ds.n == 0, "free zeroes the struct");
    nb_dataset_free(&ds);
    ok(1, "a second free is harmless");

    write_set("gz", ".gz", 12, 5, 2, 1);
    st = nb_dataset_load(&ds, tmpdir, "gz");
    ok(st == NB_OK && check_set(&ds, 12, 5, 2), "gzip IDX files (%s)", st ? nb_last_error() : "ok");
    nb_dataset_free(&ds);

    /* both names present: the .gz wins */
    write_set("both", ".gz", 4, 2, 2, 1);
    write_set("both", "", 6, 2, 2, 1);
    st = nb_dataset_load(&ds, tmpdir, "both");
    ok(st == NB_OK && ds.n == 4, "the .gz file is preferred over the raw one");
    nb_dataset_free(&ds);

    /* raw images with gzipped labels mix fine */
    write_set("mix", "", 3, 2, 2, 0);
    write_file("mix-labels-idx1-ubyte.gz", idx(0x801, 1, (const uint32_t[]){3}, (const uint8_t[]){0, 1, 2}, 3));
    st = nb_dataset_load(&ds, tmpdir, "mix");
    ok(st == NB_OK && ds.n == 3 && ds.labels && ds.labels[2] == 2 && ds.nclasses == 3,
       "raw images with gzipped labels");
    nb_dataset_free(&ds);

    write_set("nolab", ".gz", 5, 2, 3, 0);
    st = nb_dataset_load(&ds, tmpdir, "nolab");
    ok(st == NB_OK && ds.n == 5 && ds.labels == NULL && ds.nclasses == 0 && ds.images[1] == pix(0),
       "a missing labels file leaves labels NULL, nclasses 0");
    nb_dataset_free(&ds);

    int64_t dims[3];
    uint8_t *data;
    write_file("one.idx", idx(0x801, 1, (const uint32_t[]){3}, (const uint8_t[]){7, 8, 9}, 3));
    char path[512];
    snprintf(path, sizeof path, "%s/one.idx", tmpdir);
    st = nb_idx_read(path, 1, dims, &data);
    ok(st == NB_OK && dims[0] == 3 && data && data[0] == 7 && data[2] == 9, "nb_idx_read of a 1-d file");
    free(data);
    st = nb_idx_read(path, 4, dims, &data);
    ok(st == NB_ERR_ARG && data == NULL, "nb_idx_read refuses 4 dims");
}

/* A failing load: the status, and a message naming the file and the problem. */
static void expect_fail(const char *split, nb_status want, const char *file, const char *phrase)
{
    nb_dataset ds;
    nb_status st = nb_dataset_load(&ds, tmpdir, split);
    const char *m = nb_last_error();
    char full[512];
    snprintf(full, sizeof full, "%s/%s", tmpdir, file);
    ok(st == want && strstr(m, full) && strstr(m, phrase) && ds.images == NULL && ds.labels == NULL,
       "%s: %s (got %s: \"%s\")", split, phrase, nb_status_str(st), m);
    nb_dataset_free(&ds);
}

static void test_corrupt(void)
{
    static uint8_t zeros[4096];
    const uint32_t d3[3] = {5, 4, 3};

    write_file("trunc-images-idx3-ubyte", idx(0x803, 3, d3, zeros, 50));
    expect_fail("trunc", NB_ERR_FORMAT, "trunc-images-idx3-ubyte", "truncated: 60 data bytes declared, 50 read");

    write_file("truncgz-images-idx3-ubyte.gz", idx(0x803, 3, d3, zeros, 59));
    expect_fail("truncgz", NB_ERR_FORMAT, "truncgz-images-idx3-ubyte.gz", "truncated: 60 data bytes declared, 59 read");

    /* the gzip stream itself cut short, inside the data or inside its 8-byte trailer */
    uint8_t noise[600];
    uint32_t state = 12345; /* incompressible, so that the cut lands inside the data */
    for (int i = 0; i < 600; i++) {
        state = state * 1664525u + 1013904223u;
        noise[i] = (uint8_t)(state >> 24);
    }
    write_file("cutgz-images-idx3-ubyte.gz", idx(0x803, 3, (const uint32_t[]){1, 20, 30}, noise, 600));
    cut_file("cutgz-images-idx3-ubyte.gz", 300);
    expect_fail("cutgz", NB_ERR_FORMAT, "cutgz-images-idx3-ubyte.gz", "unexpected end of file");
    write_file("cuttrailer-images-idx3-ubyte.gz", idx(0x803, 3, d3, zeros, 60));
    {
        char path[512];
        struct stat sb;
        snprintf(path, sizeof path, "%s/cuttrailer-images-idx3-ubyte.gz", tmpdir);
        if (stat(path, &sb) == 0) cut_file("cuttrailer-images-idx3-ubyte.gz", (long)sb.st_size - 4);
    }
    expect_fail("cuttrailer", NB_ERR_FORMAT, "cuttrailer-images-idx3-ubyte.gz", "gzip: unexpected end of file");

    /* a corrupt deflate stream: a valid gzip header, then garbage */
    bytes g = {0};
    put(&g, (const uint8_t[]){0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 16);
    write_file("baddeflate-images-idx3-ubyte", g); /* raw name: zlib still sees the gzip magic */
    expect_fail("baddeflate", NB_ERR_FORMAT, "baddeflate-images-idx3-ubyte", "gzip:");

    bytes h = idx(0x803, 3, d3, NULL, 0);
    h.n = 10;
    write_file("header-images-idx3-ubyte", h);
    expect_fail("header", NB_ERR_FORMAT, "header-images-idx3-ubyte", "truncated header: 16 bytes expected, 10 read");
    write_file("tiny-images-idx3-ubyte", (bytes){.p = calloc(1, 2), .n = 2});
    expect_fail("tiny", NB_ERR_FORMAT, "tiny-images-idx3-ubyte", "truncated header: 16 bytes expected, 2 read");

    /* the two leading bytes must be zero even when the type and dims look right */
    write_file("lead0-images-idx3-ubyte", idx(0x01000803, 3, d3, zeros, 60));
    expect_fail("lead0", NB_ERR_FORMAT, "lead0-images-idx3-ubyte", "bad magic 0x01000803");
    write_file("lead1-images-idx3-ubyte", idx(0x00010803, 3, d3, zeros, 60));
    expect_fail("lead1", NB_ERR_FORMAT, "lead1-images-idx3-ubyte", "bad magic 0x00010803");
    write_file("magic-images-idx3-ubyte", idx(0x12345678, 3, d3, zeros, 60));
    expect_fail("magic", NB_ERR_FORMAT, "magic-images-idx3-ubyte", "bad magic 0x12345678 (expected 0x00000803 for 3 dims)");

    write_file("float-images-idx3-ubyte.gz", idx(0x0D03, 3, d3, zeros, 240));
    expect_fail("float", NB_ERR_FORMAT, "float-images-idx3-ubyte.gz", "unsupported data type 0x0d (float32)");

    write_file("ndim-images-idx3-ubyte", idx(0x802, 2, d3, zeros, 20));
    expect_fail("ndim", NB_ERR_FORMAT, "ndim-images-idx3-ubyte", "bad magic 0x00000802 (expected 0x00000803 for 3 dims)");

    write_file("huge-images-idx3-ubyte", idx(0x803, 3, (const uint32_t[]){0xFFFFFFFFu, 28, 28}, zeros, 100));
    expect_fail("huge", NB_ERR_FORMAT, "huge-images-idx3-ubyte", "declared size 4294967295 x 28 x 28 is too large");
    /* a product that wraps around 64 bits to something small */
    write_file("wrap-images-idx3-ubyte", idx(0x803, 3, (const uint32_t[]){0x80000000u, 0x80000000u, 4}, zeros, 100));
    expect_fail("wrap", NB_ERR_FORMAT, "wrap-images-idx3-ubyte", "is too large");
    write_file("empty-images-idx3-ubyte", idx(0x803, 3, (const uint32_t[]){0, 28, 28}, NULL, 0));
    expect_fail("empty", NB_ERR_FORMAT, "empty-images-idx3-ubyte", "declared size 0 x 28 x 28 is empty");

    write_file("trail-images-idx3-ubyte.gz", idx(0x803, 3, d3, zeros, 70));
    expect_fail("trail", NB_ERR_FORMAT, "trail-images-idx3-ubyte.gz", "10 bytes after the declared data");

    write_set("count", "", 5, 4, 3, 0);
    write_file("count-labels-idx1-ubyte", idx(0x801, 1, (const uint32_t[]){4}, zeros, 4));
    expect_fail("count", NB_ERR_FORMAT, "count-labels-idx1-ubyte", "5 images but 4 labels");

    write_set("badlab", "", 5, 4, 3, 0);
    write_file("badlab-labels-idx1-ubyte.gz", idx(0x803, 3, d3, zeros, 60));
    expect_fail("badlab", NB_ERR_FORMAT, "badlab-labels-idx1-ubyte.gz", "bad magic 0x00000803 (expected 0x00000801 for 1 dims)");

    expect_fail("missing", NB_ERR_IO, "missing-images-idx3-ubyte.gz", "cannot open");

    const char text[] = "<html>404 Not Found</html>\n";
    bytes t = {0};
    put(&t, text, sizeof text - 1);
    write_file("garbage-images-idx3-ubyte.gz.tmp", t);
    {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/garbage-images-idx3-ubyte.gz.tmp", tmpdir);
        snprintf(b, sizeof b, "%s/garbage-images-idx3-ubyte.gz", tmpdir);
        rename(a, b); /* not gzipped, whatever the name says */
    }
    expect_fail("garbage", NB_ERR_FORMAT, "garbage-images-idx3-ubyte.gz", "bad magic 0x3c68746d");

    char dir[512];
    snprintf(dir, sizeof dir, "%s/dir-images-idx3-ubyte", tmpdir);
    mkdir(dir, 0700);
    expect_fail("dir", NB_ERR_IO, "dir-images-idx3-ubyte", "read error");
}

/* ---- views and shuffles --------------------------------------------------------------------- */

static void test_view_shuffle(void)
{
    nb_dataset ds;
    write_set("shuf", "", 50, 3, 3, 1);
    if (nb_dataset_load(&ds, tmpdir, "shuf")) {
        ok(0, "load for the shuffle tests: %s", nb_last_error());
        return;
    }
    nb_dataset v = nb_dataset_view(&ds, 10, 5);
    ok(v.n == 5 && v.images == ds.images + 90 && v.labels == ds.labels + 10 && !v.owned &&
       v.rows == 3 && v.nclasses == 7, "view [10, 15) points into its source");
    nb_dataset w = nb_dataset_view(&ds, 48, 10);
    ok(w.n == 2 && w.labels == ds.labels + 48, "a view past the end is clamped");
    nb_dataset_free(&v);
    ok(ds.images[0] == lab(0) && v.n == 0, "freeing a view leaves its source alone");

    nb_dataset copy = ds; /* same buffers: shuffled twice below with the same seed */
    uint8_t *img0 = malloc(50 * 9), *lab0 = malloc(50);
    memcpy(img0, ds.images, 50 * 9);
    memcpy(lab0, ds.labels, 50);
    nb_rng r = nb_rng_seed(42);
    nb_dataset_shuffle(&ds, &r);

    int seen[50] = {0}, attached = 1, moved = 0;
    for (int i = 0; i < 50; i++) {
        const uint8_t *im = ds.images + i * 9;
        int orig = -1; /* which image this was, from its pixels */
        for (int j = 0; j < 50; j++)
            if (pix(j) == im[1]) orig = j;
        if (orig < 0) {
            attached = 0;
            continue;
        }
        seen[orig]++;
        moved += orig != i;
        attached &= im[0] == ds.labels[i] && ds.labels[i] == lab(orig);
        for (int k = 1; k < 9; k++) attached &= im[k] == pix(orig);
    }
    int perm = 1;
    for (int j = 0; j < 50; j++) perm &= seen[j] == 1;
    ok(perm && moved > 40, "shuffle permutes the images (%d of 50 moved)", moved);
    ok(attached, "shuffle keeps each label with its image");

    uint8_t *img1 = malloc(50 * 9);
    memcpy(img1, ds.images, 50 * 9);
    memcpy(copy.images, img0, 50 * 9);
    memcpy(copy.labels, lab0, 50);
    r = nb_rng_seed(42);
    nb_dataset_shuffle(&copy, &r);
    ok(memcmp(img1, copy.images, 50 * 9) == 0, "the same seed gives the same shuffle");
    memcpy(copy.images, img0, 50 * 9);
    r = nb_rng_seed(43);
    nb_dataset_shuffle(&copy, &r);
    ok(memcmp(img1, copy.images, 50 * 9) != 0, "another seed gives another shuffle");
    free(img0);
    free(img1);
    free(lab0);
    nb_dataset_free(&ds);
}

/* ---- conversion ----------------------------------------------------------------------------- */

static void test_images(void)
{
    /* one 2x3 image holding 0, 1, 127, 128, 200, 255, and one of 64s */
    uint8_t px[12] = {0, 1, 127, 128, 200, 255, 64, 64, 64, 64, 64, 64};
    nb_dataset ds = {.n = 2, .channels = 1, .rows = 2, .cols = 3, .images = px,
                     .labels = (uint8_t[]){3, 1}, .nclasses = 4};
    const int64_t idx[3] = {1, 0, 1};

    float xf[3 * 6];
    nb_tensor x;
    nb_tensor_wrap(&x, NB_F32, NB_SHAPE(3, 6), xf);
    nb_dataset_images(&ds, idx, 3, &x, NB_BIN_NONE, NULL);
    int good = 1;
    for (int e = 0; e < 3; e++)
        for (int p = 0; p < 6; p++) good &= xf[e * 6 + p] == (float)(px[idx[e] * 6 + p] / 255.0);
    ok(good, "f32 (3, 6): pixel / 255, rows in idx order");

    /* every byte, in a row long enough for the vector loop and a ragged tail */
    uint8_t all[263];
    float xa[263];
    for (int p = 0; p < 263; p++) all[p] = (uint8_t)(p % 256);
    nb_dataset da = {.n = 1, .channels = 1, .rows = 1, .cols = 263, .images = all};
    nb_tensor_wrap(&x, NB_F32, NB_SHAPE(1, 263), xa);
    nb_dataset_images(&da, (const int64_t[]){0}, 1, &x, NB_BIN_NONE, NULL);
    good = 1;
    for (int p = 0; p < 263; p++) good &= xa[p] == (float)(all[p] / 255.0);
    ok(good, "f32: all 256 bytes / 255 as the double quotient rounded to float");

    double xd[3 * 6];
    nb_tensor_wrap(&x, NB_F64, NB_SHAPE(3, 1, 2, 3), xd);
    nb_dataset_images(&ds, idx, 3, &x, NB_BIN_NONE, NULL);
    good = 1;
    for (int e = 0; e < 3; e++)
        for (int p = 0; p < 6; p++) good &= xd[e * 6 + p] == px[idx[e] * 6 + p] / 255.0;
    ok(good, "f64 (3, 1, 2, 3): pixel / 255");

    ok(nb_dataset_images(&ds, idx + 1, 1, &(nb_tensor){0}, NB_BIN_NONE, NULL) == NB_ERR_SHAPE,
       "a 0-d tensor is refused (%s)", nb_last_error());
    nb_tensor_wrap(&x, NB_F64, NB_SHAPE(1, 6), xd);
    ok(nb_dataset_images(&ds, idx + 1, 1, &x, NB_BIN_THRESHOLD, NULL) == NB_OK, "threshold: ok");
    const double want[6] = {0, 0, 0, 1, 1, 1};
    ok(memcmp(xd, want, sizeof want) == 0 && xd[7] == 1 / 255.0, "threshold: > 127 is 1, only row 0 written");

    for (int i = 0; i < 18; i++) xf[i] = -7;
    nb_tensor_wrap(&x, NB_F32, NB_SHAPE(2, 6), xf);
    good = nb_dataset_images(&ds, idx, 3, &x, NB_BIN_NONE, NULL) == NB_ERR_SHAPE; /* room for 2 */
    const int64_t bad[2] = {0, 2};
    good &= nb_dataset_images(&ds, bad, 2, &x, NB_BIN_NONE, NULL) == NB_ERR_ARG;
    good &= nb_dataset_images(&ds, idx, 2, &x, (nb_binarize)7, NULL) == NB_ERR_ARG;
    good &= nb_dataset_images(&ds, idx, 2, &x, NB_BIN_DYNAMIC, NULL) == NB_ERR_ARG;
    nb_tensor_wrap(&x, NB_F32, NB_SHAPE(2, 5), xf);
    good &= nb_dataset_images(&ds, idx, 2, &x, NB_BIN_NONE, NULL) == NB_ERR_SHAPE;
    for (int i = 0; i < 18; i++) good &= xf[i] == -7;
    ok(good && strstr(nb_last_error(), "(2,5)"), "a tensor of the wrong size or a bad index writes nothing (%s)", nb_last_error());

    /* dynamic: 20000 draws of image 0, f32 and f64 */
    enum { N = 20000 };
    int64_t *zeros = calloc(N, sizeof *zeros);
    float *a = malloc(N * 6 * sizeof *a), *b = malloc(N * 6 * sizeof *b);
    nb_tensor ta, tb;
    nb_tensor_wrap(&ta, NB_F32, NB_SHAPE(N, 6), a);
    nb_tensor_wrap(&tb, NB_F32, NB_SHAPE(N, 2, 3), b);
    nb_rng r = nb_rng_seed(7), r0 = r;
    nb_dataset_images(&ds, zeros, N, &ta, NB_BIN_DYNAMIC, &r);
    int binary = 1, means = 1;
    int64_t ones[6] = {0};
    double mean[6];
    for (int64_t i = 0; i < N * 6; i++) {
        binary &= a[i] == 0 || a[i] == 1;
        ones[i % 6] += a[i] == 1;
    }
    for (int p = 0; p < 6; p++) {
        const double q = px[p] / 255.0, sd = sqrt(q * (1 - q) / N);
        mean[p] = (double)ones[p] / N;
        means &= fabs(mean[p] - q) <= 5 * sd;
    }
    ok(binary, "dynamic: every value is 0 or 1");
    ok(means && mean[0] == 0 && mean[5] == 1, "dynamic: the mean of each pixel is pixel / 255 "
       "(%.4f %.4f %.4f %.4f %.4f %.4f)", mean[0], mean[1], mean[2], mean[3], mean[4], mean[5]);
    ok(r.counter != r0.counter, "dynamic: the rng advances");
    nb_dataset_images(&ds, zeros, N, &tb, NB_BIN_DYNAMIC, &r0);
    ok(memcmp(a, b, N * 6 * sizeof *a) == 0 && r0.counter == r.counter, "dynamic: the same rng state gives the same pixels");
    nb_dataset_images(&ds, zeros, N, &tb, NB_BIN_DYNAMIC, &r);
    ok(memcmp(a, b, N * 6 * sizeof *a) != 0, "dynamic: the next call draws afresh");

    /* the same draws whatever the number of threads, on work large enough to go parallel */
    double *c = malloc(N * 6 * 4 * sizeof *c), *d = malloc(N * 6 * 4 * sizeof *d);
    int64_t *many = calloc(4 * N, sizeof *many);
    const int threads = nb_get_threads();
    nb_tensor tc, td;
    nb_tensor_wrap(&tc, NB_F64, NB_SHAPE(4 * N, 6), c);
    nb_tensor_wrap(&td, NB_F64, NB_SHAPE(4 * N, 6), d);
    nb_set_threads(1);
    r = nb_rng_seed(9);
    nb_dataset_images(&ds, many, 4 * N, &tc, NB_BIN_DYNAMIC, &r);
    nb_set_threads(threads > 1 ? threads : 2);
    r = nb_rng_seed(9);
    nb_dataset_images(&ds, many, 4 * N, &td, NB_BIN_DYNAMIC, &r);
    nb_set_threads(threads);
    ok(memcmp(c, d, N * 6 * 4 * sizeof *c) == 0, "dynamic: 1 and %d threads draw the same pixels",
       threads > 1 ? threads : 2);
    free(a);
    free(b);
    free(c);
    free(d);
    free(zeros);
    free(many);

    float yf[3 * 4];
    nb_tensor y;
    nb_tensor_wrap(&y, NB_F32, NB_SHAPE(3, 4), yf);
    nb_dataset_onehot(&ds, idx, 3, &y);
    const float wf[12] = {0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0};
    ok(memcmp(yf, wf, sizeof wf) == 0, "one-hot f32 (3, 4)");
    double yd[2 * 4];
    nb_tensor_wrap(&y, NB_F64, NB_SHAPE(2, 4), yd);
    nb_dataset_onehot(&ds, idx + 1, 2, &y);
    const double wd[8] = {0, 0, 0, 1, 0, 1, 0, 0};
    ok(memcmp(yd, wd, sizeof wd) == 0, "one-hot f64 (2, 4)");
    float y5[3 * 5];
    nb_tensor_wrap(&y, NB_F32, NB_SHAPE(3, 5), y5);
    ok(nb_dataset_onehot(&ds, idx, 3, &y) == NB_OK && y5[3] == 0 && y5[4] == 0 && y5[1] == 1,
       "one-hot wider than the data's classes (a model's class count)");
    for (int i = 0; i < 12; i++) yf[i] = -7;
    nb_tensor_wrap(&y, NB_F32, NB_SHAPE(3, 3), yf);
    good = nb_dataset_onehot(&ds, idx, 3, &y) == NB_ERR_ARG && strstr(nb_last_error(), "label 3");
    nb_tensor_wrap(&y, NB_F32, NB_SHAPE(2, 4), yf);
    good &= nb_dataset_onehot(&ds, (const int64_t[]){0, -1}, 2, &y) == NB_ERR_ARG;
    ds.labels = NULL;
    nb_tensor_wrap(&y, NB_F32, NB_SHAPE(3, 4), yf);
    good &= nb_dataset_onehot(&ds, idx, 3, &y) == NB_ERR_ARG;
    for (int i = 0; i < 12; i++) good &= yf[i] == -7;
    ok(good, "one-hot into a wrong shape, with a bad index, or without labels, writes nothing");
}

/* ---- batches -------------------------------------------------------------------------------- */

/* One epoch's batches concatenated into out; returns the number of batches, -1 if any index is
 * missing or repeated, or a batch other than the last is short. */
static int epoch_order(nb_batcher *b, int64_t epoch, int64_t *out, int64_t *last)
{
    const int64_t n = b->ds->n;
    int *seen = calloc((size_t)n, sizeof *seen);
    int batches = 0, good = 1;
    int64_t k, total = 0;
    const int64_t *idx;
    nb_batcher_epoch(b, epoch);
    while ((k = nb_batcher_next(b, &idx)) > 0) {
        good &= total + k <= n && (total + k == n || k == b->batch);
        for (int64_t i = 0; good && i < k; i++) {
            good &= idx[i] >= 0 && idx[i] < n && !seen[idx[i]]++;
            out[total + i] = idx[i];
        }
        total += k;
        *last = k;
        batches++;
    }
    good &= total == n && nb_batcher_next(b, &idx) == 0;
    free(seen);
    return good ? batches : -1;
}

static void test_batcher(void)
{
    enum { N = 103 };
    uint8_t img[N];
    nb_dataset ds = {.n = N, .channels = 1, .rows = 1, .cols = 1, .images = img};
    int64_t e1[N], e2[N], again[N], other[N], last = 0;
    nb_batcher b;

    ok(nb_batcher_init(&b, &ds, 0, 1, 5) == NB_ERR_ARG && b.order == NULL, "batch size 0 is refused");
    nb_batcher_free(&b);
    ok(nb_batcher_init(&b, &ds, 10, 1, 5) == NB_OK, "init");
    int nb = epoch_order(&b, 1, e1, &last);
    ok(nb == 11 && last == 3, "every index once per epoch: 10 batches of 10, then 3 (%d batches)", nb);
    ok(epoch_order(&b, 2, e2, &last) == 11, "epoch 2 covers every index too");
    ok(memcmp(e1, e2, sizeof e1) != 0, "epochs 1 and 2 differ");
    epoch_order(&b, 1, again, &last);
    ok(memcmp(e1, again, sizeof e1) == 0, "epoch 1 again gives the same order, whatever came between");
    nb_batcher_free(&b);

    nb_batcher_init(&b, &ds, 10, 1, 5);
    const int64_t *idx;
    int64_t first[10], k0 = nb_batcher_next(&b, &idx);
    memcpy(first, idx, sizeof first);
    epoch_order(&b, 0, other, &last);
    ok(k0 == 10 && memcmp(first, other, sizeof first) == 0 && memcmp(other, e1, sizeof e1) != 0,
       "init starts epoch 0");
    nb_batcher_free(&b);
    nb_batcher_init(&b, &ds, 10, 1, 6);
    epoch_order(&b, 1, other, &last);
    ok(memcmp(e1, other, sizeof e1) != 0, "another seed gives another order");
    nb_batcher_free(&b);

    nb_batcher_init(&b, &ds, 200, 0, 5);
    int id = 1;
    ok(epoch_order(&b, 3, other, &last) == 1 && last == N, "one batch when batch > n");
    for (int i = 0; i < N; i++) id &= other[i] == i;
    ok(id, "without shuffle the order is 0..n-1");
    nb_batcher_free(&b);
    ok(nb_batcher_next(&b, &idx) == 0, "a freed batcher yields nothing");
}

/* ---- Fashion-MNIST -------------------------------------------------------------------------- */

static void test_fashion(void)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (access(dir, F_OK) != 0) {
        ok(1, "# SKIP fashion-mnist not installed");
        return;
    }
    nb_dataset tr, te;
    nb_status s1 = nb_dataset_load(&tr, dir, "train");
    ok(s1 == NB_OK, "load train (%s)", s1 ? nb_last_error() : "ok");
    nb_status s2 = nb_dataset_load(&te, dir, "t10k");
    ok(s2 == NB_OK, "load t10k (%s)", s2 ? nb_last_error() : "ok");
    ok(tr.n == 60000 && tr.rows == 28 && tr.cols == 28 && tr.channels == 1 && tr.nclasses == 10,
       "train: 60000 images of 28x28, 10 classes");
    ok(te.n == 10000 && te.rows == 28 && te.cols == 28 && te.nclasses == 10,
       "t10k: 10000 images of 28x28, 10 classes");
    int64_t count[10] = {0};
    for (int64_t i = 0; tr.labels && i < tr.n; i++) count[tr.labels[i] % 10]++;
    int even = 1;
    for (int c = 0; c < 10; c++) even &= count[c] == 6000;
    ok(even, "train: 6000 of each class");
    nb_dataset_free(&tr);
    nb_dataset_free(&te);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("test_data: mkdtemp");
        return 1;
    }
    test_load();
    test_corrupt();
    test_view_shuffle();
    test_images();
    test_batcher();
    test_fashion();
    ok(nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 && access(tmpdir, F_OK) != 0,
       "the temporary dir is removed");
    return tap_done();
}
