/* tests/test_io.c — safetensors files: round trips of tensors, views and metadata; parameter
 * stores saved and loaded, mismatches reported with nothing changed; corrupt files rejected with
 * a message; atomic saves under a full disk.
 *
 * With arguments it is one half of the cross-language check driven by tests/st_check.py:
 *     test_io write DIR   writes DIR/from_c.safetensors for Python to check
 *     test_io read DIR    checks DIR/from_py.safetensors, written by Python
 * Values follow one formula, element i (row-major) = i·0.5 - 3, exact in F32 and F64.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nabla/nn.h"
#include "tests/tap.h"

static char dir[4096];

/* dir/name, in one of a few rotating buffers. */
static const char *in_dir(const char *name)
{
    static char buf[4][sizeof dir + 260];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static double formula(int64_t i) { return (double)i * 0.5 - 3; }

static nb_tensor *seq(nb_tape *tp, nb_dtype dt, int nd, const int64_t *shape)
{
    nb_tensor *t = nb_empty(tp, dt, nd, shape);
    for (int64_t i = 0; i < nb_numel(t); i++) nb_set(t, i, formula(i));
    return t;
}

static int has(const char *msg, const char *s) { return strstr(msg, s) != NULL; }

/* t's logical contents equal the bytes at data, bit for bit. */
static int same_bits(const nb_tensor *t, const void *data)
{
    const size_t bytes = (size_t)nb_numel(t) * nb_dtype_size(t->dtype);
    void *want = malloc(bytes + 1);
    nb_copy_out(t, want, nb_numel(t));
    const int same = memcmp(want, data, bytes) == 0;
    free(want);
    return same;
}

static int write_bytes(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    const int good = fwrite(buf, 1, n, f) == n;
    return fclose(f) == 0 && good ? 0 : -1;
}

/* A safetensors file from parts: the header length hlen (or strlen(json) when hlen < 0), the
 * header text, then dlen data bytes of value 0x40. */
static int write_st(const char *path, int64_t hlen, const char *json, size_t dlen)
{
    const size_t jn = strlen(json);
    const uint64_t h = hlen < 0 ? (uint64_t)jn : (uint64_t)hlen;
    unsigned char *buf = malloc(8 + jn + dlen);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(h >> (8 * i));
    memcpy(buf + 8, json, jn);
    memset(buf + 8 + jn, 0x40, dlen);
    const int r = write_bytes(path, buf, 8 + jn + dlen);
    free(buf);
    return r;
}

/* ---- round trip ----------------------------------------------------------------------------- */

static void test_round_trip(void)
{
    nb_tape *tp = nb_tape_new();
    nb_tensor *a = seq(tp, NB_F32, NB_SHAPE(2, 3));
    nb_tensor *b = seq(tp, NB_F64, NB_SHAPE(7));
    const double odd[] = {1.0 / 3, -0.0, 1e-310, -1e300};
    nb_tensor *b2 = nb_tensor_from(tp, NB_F64, NB_SHAPE(4), odd, 4);
    nb_tensor *s = nb_scalar(tp, NB_F32, 2.5);
    nb_tensor *x = seq(tp, NB_F64, NB_SHAPE(3, 4, 5));
    nb_tensor *tr = nb_transpose(tp, x, 0, 2);                      /* (5,4,3), strided */
    nb_tensor *sl = nb_slice(tp, seq(tp, NB_F32, NB_SHAPE(2, 1, 3, 5)), 3, 0, 5, 2); /* (2,1,3,3) */
    nb_tensor *ex = nb_expand(tp, seq(tp, NB_F32, NB_SHAPE(3, 1)), NB_SHAPE(3, 4)); /* stride 0 */
    nb_tensor *z = nb_empty(tp, NB_F32, NB_SHAPE(0, 3));
    const nb_tensor *ts[] = {a, b, b2, s, tr, sl, ex, z};
    const char *names[] = {"enc.weight", "f64 vector", "odd", "scalar", "transposed", "sliced",
                           "expanded", "empty \"quoted\" \\ ünï\n"};
    enum { N = sizeof ts / sizeof ts[0] };
    ok(!nb_is_contiguous(tr) && !nb_is_contiguous(sl) && !nb_is_contiguous(ex) && s->ndim == 0,
       "round trip: inputs include strided views and a 0-dim scalar (%s)", nb_tape_error(tp));
    const char *keys[] = {"format", "config", "empty", "ünï"};
    const char *vals[] = {"nabla-test", "{\"lr\": 0.001,\n\t\"sizes\": [1, 2]} \\ \x01", "", "∂x/∂y"};
    const char *path = in_dir("round.safetensors");
    nb_status st = nb_st_save(path, N, names, ts, 4, keys, vals);
    ok(st == NB_OK, "nb_st_save of %d tensors and 4 metadata pairs (%s)", N, st ? nb_last_error() : "");

    FILE *fp = fopen(path, "rb");
    unsigned char len[8] = {0};
    const int got = fp && fread(len, 1, 8, fp) == 8;
    if (fp) fclose(fp);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len[i];
    ok(got && (8 + hlen) % 8 == 0, "the data section starts at a multiple of 8 (header %llu bytes)",
       (unsigned long long)hlen);

    nb_safetensors *f = NULL;
    st = nb_st_open(&f, path);
    ok(st == NB_OK, "reopen (%s)", st ? nb_last_error() : "");
    if (st) {
        nb_tape_free(tp);
        return;
    }
    int good = nb_st_count(f) == N && nb_st_name(f, N) == NULL && nb_st_name(f, -1) == NULL;
    for (int i = 0; i < N && good; i++) good &= nb_st_name(f, i) && !strcmp(nb_st_name(f, i), names[i]);
    ok(good, "names come back in the order given, escapes included");

    good = 1;
    for (int i = 0; i < N; i++) {
        nb_tensor t;
        int g = nb_st_get(f, names[i], &t) == NB_OK && t.dtype == ts[i]->dtype &&
                nb_same_shape(&t, ts[i]) && nb_is_contiguous(&t) &&
                (uintptr_t)t.data % nb_dtype_size(t.dtype) == 0 && same_bits(ts[i], t.data);
        if (!g) tap_diag("tensor '%s' differs", names[i]);
        good &= g;
    }
    ok(good, "every tensor back with its dtype, shape and bits (views in row-major order)");

    good = 1;
    for (int i = 0; i < 4; i++) good &= nb_st_meta(f, keys[i]) && !strcmp(nb_st_meta(f, keys[i]), vals[i]);
    ok(good && !nb_st_meta(f, "absent") && !nb_st_meta(f, NULL), "metadata values come back, absent keys are NULL");

    nb_tensor t;
    st = nb_st_get(f, "no.such", &t);
    ok(st == NB_ERR_ARG && has(nb_last_error(), "no.such") && has(nb_last_error(), path),
       "nb_st_get of an absent name: NB_ERR_ARG (%s)", nb_last_error());
    nb_st_close(f);
    nb_st_close(NULL);

    /* bad arguments: nothing is written */
    const char *dup[] = {"w", "b", "w"};
    const nb_tensor *three[] = {a, b, s};
    const char *p2 = in_dir("never.safetensors");
    st = nb_st_save(p2, 3, dup, three, 0, NULL, NULL);
    ok(st == NB_ERR_ARG && has(nb_last_error(), "'w' given twice") && access(p2, F_OK) != 0,
       "duplicate names: NB_ERR_ARG, no file (%s)", nb_last_error());
    const nb_tensor *with_null[] = {a, NULL, s};
    const char *uniq[] = {"w", "b", "c"};
    st = nb_st_save(p2, 3, uniq, with_null, 0, NULL, NULL);
    ok(st == NB_ERR_ARG && has(nb_last_error(), "'b' is NULL") && access(p2, F_OK) != 0,
       "a NULL tensor: NB_ERR_ARG, no file (%s)", nb_last_error());

    /* no tensors at all is a valid file */
    st = nb_st_save(p2, 0, NULL, NULL, 0, NULL, NULL);
    if (!st) st = nb_st_open(&f, p2);
    ok(st == NB_OK && nb_st_count(f) == 0 && !nb_st_meta(f, "x"),
       "a file with no tensors and no metadata (%s)", st ? nb_last_error() : "");
    nb_st_close(f);
    nb_tape_free(tp);
}

/* ---- files written elsewhere ---------------------------------------------------------------- */

static void test_foreign_layouts(void)
{
    /* unpadded header of odd length, a 3-byte U8 first: the F32 and F64 data are misaligned */
    const char *json = "{\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                       "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[3,11]},"
                       "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[11,19]},"
                       "\"five\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[19,23]}}";
    const size_t jn = strlen(json);
    unsigned char buf[1024];
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)jn >> (8 * i));
    memcpy(buf + 8, json, jn);
    unsigned char *d = buf + 8 + jn;
    d[0] = 1, d[1] = 2, d[2] = 3;
    const float fv[2] = {1.5f, -2.25f};
    const double dv = 1.0 / 3;
    const float one = 7;
    memcpy(d + 3, fv, 8);
    memcpy(d + 11, &dv, 8);
    memcpy(d + 19, &one, 4);
    const char *path = in_dir("misaligned.safetensors");
    write_bytes(path, buf, 8 + jn + 23);

    nb_safetensors *f = NULL;
    nb_status st = nb_st_open(&f, path);
    ok(st == NB_OK && nb_st_count(f) == 4, "unpadded header, odd offsets: opens (%s)", st ? nb_last_error() : "");
    if (st) return;
    nb_tensor t, u;
    st = nb_st_get(f, "f", &t);
    ok(st == NB_OK && (uintptr_t)t.data % 4 == 0 && t.ndim == 1 && t.shape[0] == 2 &&
       nb_get(&t, 0) == 1.5 && nb_get(&t, 1) == -2.25, "a misaligned F32 tensor comes back aligned");
    st = nb_st_get(f, "d", &u);
    ok(st == NB_OK && (uintptr_t)u.data % 8 == 0 && u.ndim == 0 && nb_get(&u, 0) == dv,
       "a misaligned F64 scalar comes back aligned");
    st = nb_st_get(f, "u", &t);
    ok(st == NB_ERR_DTYPE && has(nb_last_error(), "U8") && has(nb_last_error(), path),
       "a U8 tensor: NB_ERR_DTYPE naming the dtype (%s)", nb_last_error());
    st = nb_st_get(f, "five", &t);
    ok(st == NB_ERR_SHAPE && has(nb_last_error(), "(1,1,1,1,1)"),
       "a 5-dim tensor opens but cannot be viewed: NB_ERR_SHAPE (%s)", nb_last_error());
    nb_st_close(f);

    st = nb_st_open(&f, in_dir("does-not-exist.safetensors"));
    ok(st == NB_ERR_IO && f == NULL && has(nb_last_error(), "does-not-exist.safetensors") &&
       has(nb_last_error(), strerror(ENOENT)), "a missing file: NB_ERR_IO (%s)", nb_last_error());
    st = nb_st_open(&f, dir);
    ok(st == NB_ERR_IO && f == NULL, "a directory: NB_ERR_IO (%s)", nb_last_error());
}

/* ---- parameter stores ----------------------------------------------------------------------- */

static nb_params *store(nb_dtype dt, const char *n1, int64_t d1, const char *n2, int64_t d2,
                        double fill)
{
    nb_params *ps = nb_params_new(dt);
    nb_param(ps, n1, NB_SHAPE(d1));
    nb_param(ps, n2, NB_SHAPE(4, d2));
    for (int i = 0; i < nb_params_count(ps); i++) nb_init_constant(nb_params_at(ps, i), fill);
    return ps;
}

static int all_equal(nb_params *ps, double v)
{
    for (int i = 0; i < nb_params_count(ps); i++) {
        const nb_tensor *p = nb_params_at(ps, i);
        for (int64_t k = 0; k < nb_numel(p); k++)
            if (nb_get(p, k) != v) return 0;
    }
    return 1;
}

static void test_params(void)
{
    nb_rng rng = nb_rng_seed(7);
    nb_params *ps = nb_params_new(NB_F32);
    nb_param(ps, "enc.bias", NB_SHAPE(5));
    nb_param(ps, "enc.weight", NB_SHAPE(4, 5));
    nb_param(ps, "out.scale", NB_SHAPE(1));
    for (int i = 0; i < nb_params_count(ps); i++) nb_init_uniform(nb_params_at(ps, i), &rng, -1, 1);
    const char *path = in_dir("model.safetensors");
    const char *k[] = {"model"}, *v[] = {"test"};
    nb_status st = nb_params_save(ps, path, 1, k, v);
    ok(st == NB_OK, "nb_params_save (%s)", st ? nb_last_error() : "");

    nb_params *back = nb_params_new(NB_F32);
    nb_param(back, "out.scale", NB_SHAPE(1)); /* a different registration order */
    nb_param(back, "enc.weight", NB_SHAPE(4, 5));
    nb_param(back, "enc.bias", NB_SHAPE(5));
    st = nb_params_load(back, path);
    int good = st == NB_OK;
    for (int i = 0; i < 3 && good; i++) {
        const nb_tensor *p = nb_params_at(ps, i), *q = nb_params_find(back, p->name);
        good = q && !memcmp(p->data, q->data, (size_t)nb_numel(p) * 4);
    }
    ok(good, "nb_params_load fills every parameter bit for bit (%s)", st ? nb_last_error() : "");

    nb_params *sub = nb_params_new(NB_F32);
    nb_param(sub, "enc.bias", NB_SHAPE(5));
    st = nb_params_load(sub, path);
    ok(st == NB_OK && !memcmp(nb_params_at(sub, 0)->data, nb_params_find(ps, "enc.bias")->data, 20),
       "tensors in the file that the store lacks are ignored");

    /* mismatches: the first one is named, and nothing is copied (the matching enc.bias comes
     * first in each store, so a partial copy would show) */
    struct {
        nb_params *ps;
        const char *want, *what;
    } bad[] = {
        {store(NB_F32, "enc.bias", 5, "enc.weight", 6, 9), "'enc.weight' has shape (4,5) in the file, (4,6) in the model", "a wrong shape"},
        {store(NB_F32, "enc.bias", 5, "dec.weight", 5, 9), "'dec.weight' missing", "a missing name"},
        {store(NB_F64, "enc.bias", 5, "enc.weight", 5, 9), "'enc.bias' is F32 in the file, F64 in the model", "a wrong dtype"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = nb_params_load(bad[i].ps, path);
        const char *msg = nb_last_error();
        ok(st != NB_OK && has(msg, path) && has(msg, bad[i].want) && all_equal(bad[i].ps, 9),
           "%s: refused, parameters unchanged (%s)", bad[i].what, msg);
        nb_params_free(bad[i].ps);
    }
    nb_params_free(sub);
    nb_params_free(back);
    nb_params_free(ps);
}

/* ---- corrupt files -------------------------------------------------------------------------- */

#define T(body) "\"a\":{\"dtype\":\"F32\",\"shape\":[2]," body "}"

static void test_corrupt(void)
{
    const struct {
        const char *file, *json, *phrase;
        int64_t hlen; /* < 0: the header's length */
        size_t dlen;
    } cases[] = {
        {"empty", NULL, "too short", -1, 0},
        {"five-bytes", NULL, "too short", -1, 0},
        {"header-2^60", "{}", "over the 100 MB limit", (int64_t)1 << 60, 0},
        {"header-past-eof", "{}", "runs past the end of the file", 1000, 8},
        {"not-json", "not json", "not valid JSON", -1, 0},
        {"trailing", "{} x", "not valid JSON", -1, 0},
        {"array", "[1, 2]", "not a JSON object", -1, 0},
        {"entry-not-object", "{\"a\": 3}", "'a': entry is not an object", -1, 0},
        {"no-dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "'a': dtype missing", -1, 8},
        {"dtype-number", "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", "'a': dtype missing or not a string", -1, 8},
        {"dtype-q8", "{\"a\":{\"dtype\":\"Q8\",\"shape\":[2],\"data_offsets\":[0,8]}}", "'a': unknown dtype 'Q8'", -1, 8},
        {"no-shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", "'a': shape missing", -1, 8},
        {"negative-dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,8]}}", "'a': shape[1] is not a non-negative integer (-3)", -1, 8},
        {"fraction-dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", "shape[0] is not a non-negative integer", -1, 8},
        {"string-dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", "shape[0] is not a non-negative integer", -1, 8},
        {"overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}", "is too large", -1, 0},
        /* found by fuzzing: zero bytes, but the other dims overflow the strides */
        {"zero-then-huge", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,9007199254740992,9007199254740992],\"data_offsets\":[0,0]}}", "is too large", -1, 0},
        {"offsets-one", "{" T("\"data_offsets\":[0]") "}", "'a': data_offsets is not a pair", -1, 8},
        {"offsets-negative", "{" T("\"data_offsets\":[-8,0]") "}", "data_offsets is not a pair of non-negative integers", -1, 8},
        {"offsets-past-data", "{" T("\"data_offsets\":[0,400]") "}", "'a': data_offsets [0, 400] run past the end of the data section", -1, 8},
        {"offsets-reversed", "{" T("\"data_offsets\":[8,0]") "}", "'a': data_offsets [8, 0] have begin > end", -1, 8},
        {"size-mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "'a': data_offsets [0, 8] hold 8 bytes, but shape (3) of F32 needs 12", -1, 8},
        {"overlap", "{" T("\"data_offsets\":[0,8]") ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", "'a' and 'b' overlap", -1, 12},
        {"duplicate", "{" T("\"data_offsets\":[0,8]") "," T("\"data_offsets\":[8,16]") "}", "'a' appears twice", -1, 16},
        {"hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", "bytes [4, 8) of the data section belong to no tensor", -1, 12},
        {"trailing-data", "{" T("\"data_offsets\":[0,8]") "}", "bytes [8, 12) of the data section belong to no tensor", -1, 12},
        {"truncated", "{" T("\"data_offsets\":[0,8]") "}", "truncated file", -1, 4},
        {"meta-not-string", "{\"__metadata__\":{\"k\":1}}", "__metadata__ value of 'k' is not a string", -1, 0},
        {"meta-not-object", "{\"__metadata__\":[]}", "__metadata__ is not an object", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "bad-%s.safetensors", cases[i].file);
        const char *path = in_dir(name);
        if (!cases[i].json) write_bytes(path, "abcde", strcmp(cases[i].file, "empty") ? 5 : 0);
        else write_st(path, cases[i].hlen, cases[i].json, cases[i].dlen);
        static char sentinel;
        nb_safetensors *f = (nb_safetensors *)&sentinel; /* must come back NULL */
        nb_status st = nb_st_open(&f, path);
        const char *msg = nb_last_error();
        ok(st != NB_OK && f == NULL && has(msg, path) && has(msg, cases[i].phrase),
           "corrupt file (%s): %s", cases[i].file, msg);
        if (!st) nb_st_close(f);
    }
}

/* ---- checksums: a flipped bit anywhere in a tensor is caught, and named ------------------- */

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n = f && !fseek(f, 0, SEEK_END) ? ftell(f) : -1;
    if (f) fclose(f);
    return n;
}

/* Flips bit `bit` of byte `at` of the file. */
static int flip(const char *path, long at, int bit)
{
    FILE *f = fopen(path, "r+b");
    int c = f && !fseek(f, at, SEEK_SET) ? fgetc(f) : EOF;
    int ok_ = c != EOF && !fseek(f, at, SEEK_SET) && fputc(c ^ (1 << bit), f) != EOF;
    if (f) fclose(f);
    return ok_;
}

static void test_checksums(void)
{
    nb_params *ps = store(NB_F32, "enc.weight", 300, "enc.bias", 7, 0.5); /* (300) and (4, 7) */
    const char *path = in_dir("sums.safetensors");
    ok(!nb_params_save(ps, path, 0, NULL, NULL), "saved with checksums");
    nb_safetensors *f;
    int clean = !nb_st_open(&f, path) && nb_st_meta(f, "nabla.format") && nb_st_meta(f, "nabla.xxh3");
    if (clean) nb_st_close(f);
    ok(clean, "the file carries its format version and checksums, and verifies");
    /* every one of 20 single-bit flips spread over the data section is caught */
    const long size = file_size(path), data = size - (300 + 28) * 4;
    int caught = 0, named = 0;
    for (int k = 0; k < 20; k++) {
        const long at = data + k * (size - data) / 20;
        if (!flip(path, at, k % 8)) break;
        const nb_status st = nb_st_open(&f, path);
        caught += st == NB_ERR_FORMAT && has(nb_last_error(), "fails its checksum");
        named += has(nb_last_error(), at - data < 300 * 4 ? "'enc.weight'" : "'enc.bias'");
        if (!st) nb_st_close(f);
        flip(path, at, k % 8);
    }
    ok(caught == 20 && named == 20, "20 flipped bits in the data: %d caught, %d name their tensor (%s)", caught,
       named, nb_last_error());
    ok(!nb_params_load(ps, path), "the file restored verifies again");
    ok(nb_st_save(path, 0, NULL, NULL, 1, (const char *[]){"nabla.xxh3"}, (const char *[]){"{}"}) == NB_ERR_ARG &&
           has(nb_last_error(), "reserved"), "metadata keys starting with nabla. are reserved");
    /* a file from a newer nabla is refused, not misread */
    char json[200];
    snprintf(json, sizeof json, "{\"__metadata__\":{\"nabla.format\":\"3\",\"nabla.xxh3\":\"{}\"}}");
    write_st(in_dir("newer.safetensors"), -1, json, 0);
    ok(nb_st_open(&f, in_dir("newer.safetensors")) == NB_ERR_FORMAT && has(nb_last_error(), "format '3'"),
       "a newer format is refused: %s", nb_last_error());
    nb_params_free(ps);
}

/* ---- atomic saves --------------------------------------------------------------------------- */

static int temp_files_left(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

static void test_atomic(void)
{
    nb_tape *tp = nb_tape_new();
    nb_tensor *small = seq(tp, NB_F32, NB_SHAPE(4));
    const char *path = in_dir("atomic.safetensors");
    const char *nm[] = {"w"};
    const nb_tensor *ts[] = {small};
    nb_status st = nb_st_save(path, 1, nm, ts, 0, NULL, NULL);
    ok(st == NB_OK, "a small file to overwrite (%s)", st ? nb_last_error() : "");

    /* a larger save in a child whose files may not exceed 4096 bytes: a full disk, as far as
     * write(2) is concerned (EFBIG) */
    int fds[2];
    if (pipe(fds)) fds[0] = fds[1] = -1;
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        const struct rlimit lim = {4096, 4096};
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &lim);
        const nb_tensor *big[] = {seq(tp, NB_F32, NB_SHAPE(100, 100)), small};
        const char *bn[] = {"big", "w"};
        const nb_status cst = nb_st_save(path, 2, bn, big, 0, NULL, NULL);
        const char *msg = cst ? nb_last_error() : "succeeded";
        if (write(fds[1], msg, strlen(msg)) < 0) _exit(3);
        _exit(cst != NB_ERR_IO ? 1 : !has(msg, path) || !has(msg, strerror(EFBIG)) ? 2 : 0);
    }
    close(fds[1]);
    char msg[1024] = "";
    ssize_t got = 0, r;
    while (fds[0] >= 0 && (r = read(fds[0], msg + got, sizeof msg - 1 - (size_t)got)) > 0) got += r;
    msg[got] = '\0';
    close(fds[0]);
    int status = 0;
    ok(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "save past a 4096-byte file-size limit: NB_ERR_IO with the path and errno text (%s)", msg);

    nb_safetensors *f = NULL;
    nb_tensor t;
    st = nb_st_open(&f, path);
    ok(st == NB_OK && nb_st_count(f) == 1 && nb_st_get(f, "w", &t) == NB_OK && nb_same_shape(&t, small) &&
       same_bits(small, t.data), "the old file is intact (%s)", st ? nb_last_error() : "");
    nb_st_close(f);
    ok(temp_files_left() == 0, "no temporary file is left behind");

    const char *nowhere = in_dir("no-such-dir/x.safetensors");
    st = nb_st_save(nowhere, 1, nm, ts, 0, NULL, NULL);
    ok(st == NB_ERR_IO && has(nb_last_error(), nowhere) && has(nb_last_error(), strerror(ENOENT)),
       "save into a missing directory: NB_ERR_IO (%s)", nb_last_error());

    /* rename over a directory fails after everything was written: the temporary goes */
    const char *sub = in_dir("a-directory");
    mkdir(sub, 0755);
    st = nb_st_save(sub, 1, nm, ts, 0, NULL, NULL);
    ok(st == NB_ERR_IO && has(nb_last_error(), sub) && temp_files_left() == 0,
       "save over a directory: NB_ERR_IO, no temporary left (%s)", nb_last_error());
    rmdir(sub);

    struct stat sb = {0};
    const mode_t um = umask(022);
    umask(um);
    const int found = stat(path, &sb) == 0;
    ok(found && (sb.st_mode & 0777) == (0666 & ~um),
       "a saved file gets 0666 less the umask, not mkstemp's 0600 (%o)", (unsigned)(sb.st_mode & 0777));
    nb_tape_free(tp);
}

/* ---- the cross-language check (tests/st_check.py) ------------------------------------------ */

static int write_for_python(void)
{
    nb_tape *tp = nb_tape_new();
    nb_tensor *m = seq(tp, NB_F32, NB_SHAPE(3, 4));
    /* a (4,3) view whose element (a, b) is base (b, a): Python checks (b·4 + a)·0.5 - 3 */
    nb_tensor *tr = nb_transpose(tp, seq(tp, NB_F64, NB_SHAPE(3, 4)), 0, 1);
    const nb_tensor *ts[] = {m, seq(tp, NB_F64, NB_SHAPE(5)), nb_scalar(tp, NB_F32, formula(0)), tr,
                             seq(tp, NB_F32, NB_SHAPE(2, 1, 2, 3))};
    const char *names[] = {"f32.matrix", "f64.vector", "scalar", "transposed", "four.dims"};
    const char *keys[] = {"writer", "quote"};
    const char *vals[] = {"nabla test_io", "say \"hi\"\n\tü \\"};
    const char *path = in_dir("from_c.safetensors");
    nb_status st = nb_st_save(path, 5, names, ts, 2, keys, vals);
    ok(st == NB_OK, "wrote %s (%s)", path, st ? nb_last_error() : "");
    nb_tape_free(tp);
    return tap_done();
}

static int read_from_python(void)
{
    const char *path = in_dir("from_py.safetensors");
    nb_safetensors *f = NULL;
    nb_status st = nb_st_open(&f, path);
    ok(st == NB_OK, "opened %s (%s)", path, st ? nb_last_error() : "");
    if (st) return tap_done();
    const char *order[] = {"odd.bytes", "w", "b", "s", "steps", "empty"};
    int good = nb_st_count(f) == 6;
    for (int i = 0; i < 6 && good; i++) good &= !strcmp(nb_st_name(f, i), order[i]);
    ok(good, "six tensors, in Python's order");

    const struct {
        const char *name;
        nb_dtype dt;
        int ndim;
        int64_t shape[2];
    } want[] = {{"w", NB_F32, 2, {2, 3}}, {"b", NB_F64, 1, {4}}, {"s", NB_F64, 0, {0}},
                {"empty", NB_F32, 2, {0, 5}}};
    for (int i = 0; i < 4; i++) {
        nb_tensor t;
        st = nb_st_get(f, want[i].name, &t);
        good = st == NB_OK && t.dtype == want[i].dt && t.ndim == want[i].ndim &&
               (uintptr_t)t.data % nb_dtype_size(t.dtype) == 0;
        for (int d = 0; d < want[i].ndim && good; d++) good &= t.shape[d] == want[i].shape[d];
        for (int64_t k = 0; k < nb_numel(&t) && good; k++) good &= nb_get(&t, k) == formula(k);
        ok(good, "'%s': %s, shape and values i*0.5-3 (%s)", want[i].name, nb_dtype_name(want[i].dt),
           st ? nb_last_error() : "");
    }
    nb_tensor t;
    st = nb_st_get(f, "steps", &t);
    ok(st == NB_ERR_DTYPE && has(nb_last_error(), "I64"), "'steps' is I64: NB_ERR_DTYPE (%s)", nb_last_error());
    const char *fw = nb_st_meta(f, "framework"), *note = nb_st_meta(f, "note");
    ok(fw && !strcmp(fw, "python") && note && !strcmp(note, "ünï \"q\" \\ / \n"),
       "metadata with escapes and UTF-8");
    nb_st_close(f);
    return tap_done();
}

/* ---- driver --------------------------------------------------------------------------------- */

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(in_dir(e->d_name));
    if (d) closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    if (argc == 3 && (!strcmp(argv[1], "write") || !strcmp(argv[1], "read"))) {
        snprintf(dir, sizeof dir, "%s", argv[2]);
        return !strcmp(argv[1], "write") ? write_for_python() : read_from_python();
    }
    if (argc != 1) {
        fprintf(stderr, "usage: test_io [write DIR | read DIR]\n");
        return 2;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/nb_test_io.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        printf("Bail out! cannot create a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    test_round_trip();
    test_foreign_layouts();
    test_params();
    test_corrupt();
    test_checksums();
    test_atomic();
    remove_dir();
    return tap_done();
}
