/* nn/safetensors.c — parameter files in the safetensors format.
 *
 * Layout (github.com/huggingface/safetensors): an 8-byte little-endian u64 N, N bytes of UTF-8
 * JSON, then the data section. The JSON maps each tensor name to
 *     {"dtype": "F32", "shape": [400, 784], "data_offsets": [begin, end]}
 * with offsets relative to the start of the data section, plus an optional "__metadata__"
 * object of string pairs. Data is row-major and little-endian, and the tensors cover the data
 * section exactly: no overlaps, no holes.
 *
 * Reading trusts nothing: every size is checked against the file's before anything is allocated,
 * and the whole file is validated before nb_st_open returns. The data section is read into its
 * own 64-byte-aligned block, so views are aligned whatever the header's length; an F32/F64
 * tensor whose offset is not a multiple of its element size (possible after odd-sized U8
 * tensors) gets an aligned copy.
 *
 * Writing is atomic: a temporary file beside the target, every write checked, fsync, rename.
 *
 * Files nabla writes carry, in "__metadata__", "nabla.format" (ST_FORMAT) and "nabla.xxh3": a
 * JSON object of each tensor's XXH3-64 hash (16 hex digits) over its data bytes. Reading
 * verifies every hash, so a flipped bit is an error that names the tensor; files from other
 * writers carry neither key and load as they are.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <xxhash.h>

#include "nabla/nn.h"
#include "tensor/error.h"
#include "tensor/file.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data is little-endian; nabla reads and writes it in place");

/* The reference implementation's limit on the header: bounds what a hostile file can make us
 * allocate before anything is validated. */
static const uint64_t ST_MAX_HEADER = 100u << 20;
/* Alignment of the data block and of the copies; 64 suits any vector load. */
enum { ST_ALIGN = 64 };
/* The version of what nabla adds to the format (the checksums); a newer one is refused. */
#define ST_FORMAT "2"
#define ST_KEY_FORMAT "nabla.format"
#define ST_KEY_HASHES "nabla.xxh3"
/* Integers above 2^53 are not exact in cJSON's doubles. */
static const double ST_MAX_INT = 9007199254740992.0;

static const struct st_dtype {
    const char *name;
    size_t size;
} ST_DTYPES[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},     {"I32", 4},     {"I16", 2},
    {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"F8_E4M3", 1},
    {"F8_E5M2", 1},
};

static size_t dtype_size(const char *name)
{
    for (size_t i = 0; i < sizeof ST_DTYPES / sizeof ST_DTYPES[0]; i++)
        if (!strcmp(name, ST_DTYPES[i].name)) return ST_DTYPES[i].size;
    return 0;
}

static const char *dtype_tag(nb_dtype dt) { return dt == NB_F64 ? "F64" : "F32"; }

typedef struct st_entry {
    const char *name;     /* points into the parsed header */
    const char *dtype;    /* "F32", "U8", ... */
    int nb_dtype;         /* NB_F32, NB_F64, or -1 for the others */
    int ndim;
    const int64_t *shape; /* ndim dims, in the handle's dims block */
    uint64_t begin, end;  /* within the data section */
    void *data;           /* aligned for its dtype */
} st_entry;

typedef struct st_key {
    const char *name;
    int i;
} st_key;

struct nb_safetensors {
    char *path;
    cJSON *header;
    const cJSON *meta; /* the "__metadata__" object, or NULL */
    int n;
    st_entry *e;       /* in header order */
    st_key *by_name;   /* sorted by name, for lookups */
    int64_t *dims;
    void *data;        /* the data section */
    void *copies;      /* aligned copies of misaligned F32/F64 tensors */
};

/* "(2,3)" into buf, truncated to fit; returns buf. */
static char *shape_str(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ",%" PRId64 : "%" PRId64, shape[i]);
    if (k < size) snprintf(buf + k, size - k, ")");
    return buf;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(((const st_key *)a)->name, ((const st_key *)b)->name);
}

static const st_entry *st_find(const nb_safetensors *f, const char *name)
{
    const st_key key = {name, 0};
    const st_key *k = bsearch(&key, f->by_name, (size_t)f->n, sizeof *k, cmp_key);
    return k ? &f->e[k->i] : NULL;
}

/* ---- reading -------------------------------------------------------------------------------- */

/* A JSON number holding a non-negative integer that a double represents exactly. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    const double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

/* " (-3)" for a number, "" otherwise: what a bad value was, for messages. */
static const char *json_what(const cJSON *v, char *buf, size_t size)
{
    if (cJSON_IsNumber(v)) snprintf(buf, size, " (%.17g)", v->valuedouble);
    else buf[0] = '\0';
    return buf;
}

static nb_status check_meta(const cJSON *meta, const char *path)
{
    if (!cJSON_IsObject(meta)) return nb_error(NB_ERR_FORMAT, "%s: __metadata__ is not an object", path);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, meta)
        if (!cJSON_IsString(kv))
            return nb_error(NB_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", path,
                            kv->string);
    return NB_OK;
}

/* Fills entry e from its JSON object, checking it against a data section of dsize bytes. */
static nb_status parse_entry(st_entry *e, const cJSON *it, int64_t *dims, uint64_t dsize,
                             const char *path)
{
    const char *nm = it->string;
    e->name = nm;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    if (!cJSON_IsString(dt))
        return nb_error(NB_ERR_FORMAT, "%s: '%s': dtype missing or not a string", path, nm);
    e->dtype = dt->valuestring;
    const size_t es = dtype_size(e->dtype);
    if (!es) return nb_error(NB_ERR_FORMAT, "%s: '%s': unknown dtype '%s'", path, nm, e->dtype);
    e->nb_dtype = !strcmp(e->dtype, "F32") ? NB_F32 : !strcmp(e->dtype, "F64") ? NB_F64 : -1;

    /* parse_header has checked that shape is an array */
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape"), *d;
    /* the product of the non-zero dims must fit too: a zero makes the byte count 0, but the
     * other sizes still reach nb_tensor_wrap's strides and every loop over the shape */
    uint64_t bytes = es, nonzero = es;
    int overflow = 0;
    e->ndim = 0;
    e->shape = dims;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        char what[40];
        if (!json_uint(d, &v))
            return nb_error(NB_ERR_FORMAT, "%s: '%s': shape[%d] is not a non-negative integer%s",
                            path, nm, e->ndim, json_what(d, what, sizeof what));
        dims[e->ndim++] = (int64_t)v;
        overflow |= __builtin_mul_overflow(bytes, v, &bytes);
        if (v) overflow |= __builtin_mul_overflow(nonzero, v, &nonzero) || nonzero > (uint64_t)INT64_MAX;
    }
    char sh[96];
    shape_str(sh, sizeof sh, e->ndim, e->shape);
    if (overflow) return nb_error(NB_ERR_FORMAT, "%s: '%s': shape %s is too large", path, nm, sh);

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
        !json_uint(cJSON_GetArrayItem(off, 0), &e->begin) ||
        !json_uint(cJSON_GetArrayItem(off, 1), &e->end))
        return nb_error(NB_ERR_FORMAT, "%s: '%s': data_offsets is not a pair of non-negative integers",
                        path, nm);
    if (e->begin > e->end)
        return nb_error(NB_ERR_FORMAT, "%s: '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] have begin > end",
                        path, nm, e->begin, e->end);
    if (e->end > dsize)
        return nb_error(NB_ERR_FORMAT, "%s: '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] run past the "
                        "end of the data section (%" PRIu64 " bytes; truncated file?)", path, nm,
                        e->begin, e->end, dsize);
    if (e->end - e->begin != bytes)
        return nb_error(NB_ERR_FORMAT, "%s: '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                        " bytes, but shape %s of %s needs %" PRIu64, path, nm, e->begin, e->end,
                        e->end - e->begin, sh, e->dtype, bytes);
    return NB_OK;
}

typedef struct st_span {
    uint64_t begin, end;
    int i;
} st_span;

static int cmp_span(const void *a, const void *b)
{
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The tensors must tile [0, dsize) exactly, as the reference implementation requires. */
static nb_status check_tiling(const nb_safetensors *f, uint64_t dsize)
{
    st_span *s = malloc(((size_t)f->n + 1) * sizeof *s);
    if (!s) return nb_error(NB_ERR_NOMEM, "%s: out of memory", f->path);
    for (int i = 0; i < f->n; i++) s[i] = (st_span){f->e[i].begin, f->e[i].end, i};
    qsort(s, (size_t)f->n, sizeof *s, cmp_span);
    nb_status st = NB_OK;
    uint64_t pos = 0;
    for (int k = 0; k < f->n && !st; k++) {
        if (s[k].begin < pos)
            st = nb_error(NB_ERR_FORMAT, "%s: '%s' and '%s' overlap (bytes [%" PRIu64 ", %" PRIu64
                          ") and [%" PRIu64 ", %" PRIu64 ") of the data section)", f->path,
                          f->e[s[k - 1].i].name, f->e[s[k].i].name, s[k - 1].begin, s[k - 1].end,
                          s[k].begin, s[k].end);
        else if (s[k].begin > pos)
            st = nb_error(NB_ERR_FORMAT, "%s: bytes [%" PRIu64 ", %" PRIu64 ") of the data section "
                          "belong to no tensor", f->path, pos, s[k].begin);
        pos = s[k].end;
    }
    if (!st && pos < dsize)
        st = nb_error(NB_ERR_FORMAT, "%s: bytes [%" PRIu64 ", %" PRIu64 ") of the data section belong "
                      "to no tensor", f->path, pos, dsize);
    free(s);
    return st;
}

/* Parses and validates the header text (hlen bytes) for a data section of dsize bytes. */
static nb_status parse_header(nb_safetensors *f, const char *hdr, uint64_t hlen, uint64_t dsize)
{
    const char *path = f->path, *end = NULL;
    f->header = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!f->header)
        return nb_error(NB_ERR_FORMAT, "%s: header is not valid JSON (error at byte %td of %" PRIu64 ")",
                        path, end ? end - hdr : 0, hlen);
    for (const char *p = end; p < hdr + hlen; p++)
        if (!*p || !strchr(" \t\r\n", *p))
            return nb_error(NB_ERR_FORMAT, "%s: header is not valid JSON (text after the object, at "
                            "byte %td)", path, p - hdr);
    if (!cJSON_IsObject(f->header))
        return nb_error(NB_ERR_FORMAT, "%s: header is not a JSON object", path);

    /* first pass: count tensors and dims, check the metadata */
    size_t ndims = 0;
    const cJSON *it;
    nb_status st;
    cJSON_ArrayForEach(it, f->header) {
        if (!strcmp(it->string, "__metadata__")) {
            if (f->meta) return nb_error(NB_ERR_FORMAT, "%s: __metadata__ appears twice", path);
            if ((st = check_meta(it, path))) return st;
            f->meta = it;
            continue;
        }
        if (!cJSON_IsObject(it))
            return nb_error(NB_ERR_FORMAT, "%s: '%s': entry is not an object", path, it->string);
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
        if (!cJSON_IsArray(shape))
            return nb_error(NB_ERR_FORMAT, "%s: '%s': shape missing or not an array", path, it->string);
        ndims += (size_t)cJSON_GetArraySize(shape);
        f->n++;
    }

    f->e = calloc((size_t)f->n + 1, sizeof *f->e);
    f->by_name = malloc(((size_t)f->n + 1) * sizeof *f->by_name);
    f->dims = malloc((ndims + 1) * sizeof *f->dims);
    if (!f->e || !f->by_name || !f->dims) return nb_error(NB_ERR_NOMEM, "%s: out of memory", path);
    int i = 0;
    size_t used = 0;
    cJSON_ArrayForEach(it, f->header) {
        if (it == f->meta) continue;
        if ((st = parse_entry(&f->e[i], it, f->dims + used, dsize, path))) return st;
        used += (size_t)f->e[i].ndim;
        f->by_name[i] = (st_key){f->e[i].name, i};
        i++;
    }
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_key);
    for (int k = 1; k < f->n; k++)
        if (!strcmp(f->by_name[k - 1].name, f->by_name[k].name))
            return nb_error(NB_ERR_FORMAT, "%s: '%s' appears twice in the header", path,
                            f->by_name[k].name);
    return check_tiling(f, dsize);
}

static nb_status read_exact(FILE *fp, void *buf, uint64_t n, const char *path, const char *what)
{
    if (n && fread(buf, 1, (size_t)n, fp) != n)
        return ferror(fp) ? nb_error(NB_ERR_IO, "%s: cannot read the %s: %s", path, what, strerror(errno))
                          : nb_error(NB_ERR_FORMAT, "%s: the file ended while reading the %s", path, what);
    return NB_OK;
}

static uint64_t round_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

/* Reads the data section and points every entry at its bytes, copying misaligned ones. */
static nb_status read_data(nb_safetensors *f, FILE *fp, uint64_t dsize)
{
    f->data = aligned_alloc(ST_ALIGN, round_up(dsize ? dsize : 1, ST_ALIGN));
    if (!f->data)
        return nb_error(NB_ERR_NOMEM, "%s: cannot allocate %" PRIu64 " bytes for the data", f->path, dsize);
    nb_status st = read_exact(fp, f->data, dsize, f->path, "data");
    if (st) return st;

    uint64_t extra = 0;
    for (int i = 0; i < f->n; i++) {
        st_entry *e = &f->e[i];
        if (e->nb_dtype >= 0 && e->begin % nb_dtype_size((nb_dtype)e->nb_dtype))
            extra += round_up(e->end - e->begin, ST_ALIGN);
        e->data = (char *)f->data + e->begin;
    }
    if (!extra) return NB_OK;
    f->copies = aligned_alloc(ST_ALIGN, extra);
    if (!f->copies)
        return nb_error(NB_ERR_NOMEM, "%s: cannot allocate %" PRIu64 " bytes to align tensors", f->path,
                        extra);
    char *dst = f->copies;
    for (int i = 0; i < f->n; i++) {
        st_entry *e = &f->e[i];
        if (e->nb_dtype < 0 || e->begin % nb_dtype_size((nb_dtype)e->nb_dtype) == 0) continue;
        memcpy(dst, e->data, e->end - e->begin);
        e->data = dst;
        dst += round_up(e->end - e->begin, ST_ALIGN);
    }
    return NB_OK;
}

static const char *meta_get(const nb_safetensors *f, const char *key)
{
    const cJSON *v = f->meta ? cJSON_GetObjectItemCaseSensitive(f->meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void hash_hex(char out[17], const void *data, size_t bytes)
{
    snprintf(out, 17, "%016llx", (unsigned long long)XXH3_64bits(data, bytes));
}

/* Checks every tensor against the hashes nabla stored, when it stored them. */
static nb_status verify_hashes(const nb_safetensors *f)
{
    const char *fmt = meta_get(f, ST_KEY_FORMAT), *text = meta_get(f, ST_KEY_HASHES);
    if (!fmt && !text) return NB_OK; /* another writer: nothing to check against */
    if (!fmt || strtol(fmt, NULL, 10) > strtol(ST_FORMAT, NULL, 10) || strtol(fmt, NULL, 10) < 2)
        return nb_error(NB_ERR_FORMAT, "%s: nabla format '%.20s' (this nabla reads %s)", f->path,
                        fmt ? fmt : "none", ST_FORMAT);
    cJSON *h = text ? cJSON_Parse(text) : NULL;
    nb_status st = cJSON_IsObject(h) ? NB_OK
                                     : nb_error(NB_ERR_FORMAT, "%s: the checksums are missing or not a JSON object", f->path);
    int listed = 0;
    for (const cJSON *it = h ? h->child : NULL; !st && it; it = it->next, listed++)
        if (!st_find(f, it->string))
            st = nb_error(NB_ERR_FORMAT, "%s: a checksum for '%.100s', which the file does not hold", f->path, it->string);
    for (int i = 0; !st && i < f->n; i++) {
        const st_entry *e = &f->e[i];
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(h, e->name);
        char got[17];
        hash_hex(got, e->data, (size_t)(e->end - e->begin));
        if (!cJSON_IsString(want))
            st = nb_error(NB_ERR_FORMAT, "%s: tensor '%s' has no checksum", f->path, e->name);
        else if (strcmp(want->valuestring, got))
            st = nb_error(NB_ERR_FORMAT, "%s: tensor '%s' fails its checksum (stored %.16s, computed %s): "
                          "the file is corrupt", f->path, e->name, want->valuestring, got);
    }
    if (!st && listed != f->n)
        st = nb_error(NB_ERR_FORMAT, "%s: %d checksums for %d tensors", f->path, listed, f->n);
    cJSON_Delete(h);
    return st;
}

static nb_status st_load(nb_safetensors *f, FILE *fp)
{
    const char *path = f->path;
    struct stat sb;
    if (fstat(fileno(fp), &sb)) return nb_error(NB_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return nb_error(NB_ERR_IO, "%s: not a regular file", path);
    const uint64_t size = (uint64_t)sb.st_size;
    if (size < 8)
        return nb_error(NB_ERR_FORMAT, "%s: too short for a safetensors file (%" PRIu64 " bytes; the "
                        "header length alone takes 8)", path, size);

    unsigned char len[8];
    nb_status st = read_exact(fp, len, 8, path, "header length");
    if (st) return st;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len[i];
    if (hlen > ST_MAX_HEADER)
        return nb_error(NB_ERR_FORMAT, "%s: header length %" PRIu64 " is over the 100 MB limit "
                        "(not a safetensors file?)", path, hlen);
    if (hlen > size - 8)
        return nb_error(NB_ERR_FORMAT, "%s: header length %" PRIu64 " runs past the end of the file (%"
                        PRIu64 " bytes)", path, hlen, size);

    char *hdr = malloc((size_t)hlen + 1);
    if (!hdr) return nb_error(NB_ERR_NOMEM, "%s: cannot allocate %" PRIu64 " bytes for the header", path, hlen);
    st = read_exact(fp, hdr, hlen, path, "header");
    if (!st) {
        hdr[hlen] = '\0';
        st = parse_header(f, hdr, hlen, size - 8 - hlen);
    }
    free(hdr); /* names and metadata live on in the cJSON tree */
    if (!st) st = read_data(f, fp, size - 8 - hlen);
    if (!st) st = verify_hashes(f);
    return st;
}

nb_status nb_st_open(nb_safetensors **out, const char *path)
{
    if (!out || !path) return nb_error(NB_ERR_ARG, "nb_st_open: NULL argument");
    *out = NULL;
    nb_safetensors *f = calloc(1, sizeof *f);
    if (f) f->path = strdup(path);
    if (!f || !f->path) {
        free(f);
        return nb_error(NB_ERR_NOMEM, "%s: out of memory", path);
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        const int err = errno;
        nb_st_close(f);
        return nb_error(NB_ERR_IO, "%s: cannot open: %s", path, strerror(err));
    }
    nb_status st = st_load(f, fp);
    fclose(fp); /* read-only: nothing to lose */
    if (st) {
        nb_st_close(f);
        return st;
    }
    *out = f;
    return NB_OK;
}

void nb_st_close(nb_safetensors *f)
{
    if (!f) return;
    cJSON_Delete(f->header);
    free(f->e), free(f->by_name), free(f->dims), free(f->data), free(f->copies), free(f->path);
    free(f);
}

int nb_st_count(const nb_safetensors *f) { return f ? f->n : 0; }

const char *nb_st_name(const nb_safetensors *f, int i)
{
    return f && i >= 0 && i < f->n ? f->e[i].name : NULL;
}

nb_status nb_st_get(const nb_safetensors *f, const char *name, nb_tensor *t)
{
    if (!f || !name || !t) return nb_error(NB_ERR_ARG, "nb_st_get: NULL argument");
    const st_entry *e = st_find(f, name);
    if (!e) return nb_error(NB_ERR_ARG, "%s: no tensor '%s'", f->path, name);
    if (e->nb_dtype < 0)
        return nb_error(NB_ERR_DTYPE, "%s: '%s' is %s; only F32 and F64 can be read", f->path, name,
                        e->dtype);
    if (e->ndim > NB_MAX_DIMS) {
        char sh[96];
        return nb_error(NB_ERR_SHAPE, "%s: '%s' has shape %s; nabla tensors have at most %d dims",
                        f->path, name, shape_str(sh, sizeof sh, e->ndim, e->shape), NB_MAX_DIMS);
    }
    nb_tensor_wrap(t, (nb_dtype)e->nb_dtype, e->ndim, e->shape, e->data);
    return NB_OK;
}

const char *nb_st_meta(const nb_safetensors *f, const char *key)
{
    if (!f || !f->meta || !key) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f->meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- writing -------------------------------------------------------------------------------- */

/* A growing string; oom latches the first failed allocation. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    const int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_add(b, tmp, k < 0 ? 0 : (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* s as a JSON string: quotes, backslashes and control characters escaped, UTF-8 kept. */
static void sb_json_str(sbuf *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            const char esc[2] = {'\\', (char)*p};
            sb_add(b, esc, 2);
        } else if (*p < 0x20) {
            sb_printf(b, "\\u%04x", *p);
        } else {
            sb_add(b, (const char *)p, 1);
        }
    }
    sb_add(b, "\"", 1);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that appears twice in names[0..n), or NULL (or NULL with *oom set). */
static const char *find_duplicate(int n, const char *const *names, int *oom)
{
    *oom = 0;
    if (n < 2) return NULL;
    const char **s = malloc((size_t)n * sizeof *s);
    *oom = !s;
    if (!s) return NULL;
    memcpy(s, names, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_str);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (!strcmp(s[i - 1], s[i])) dup = s[i];
    free(s);
    return dup;
}

static nb_status check_save_args(const char *path, int n, const char *const *names,
                                 const nb_tensor *const *tensors, int nmeta,
                                 const char *const *keys, const char *const *values)
{
    if (n < 0 || nmeta < 0 || (n > 0 && (!names || !tensors)) || (nmeta > 0 && (!keys || !values)))
        return nb_error(NB_ERR_ARG, "%s: nb_st_save: %d tensors, %d metadata pairs, with NULL arrays",
                        path, n, nmeta);
    for (int i = 0; i < n; i++) {
        if (!names[i]) return nb_error(NB_ERR_ARG, "%s: tensor %d has no name", path, i);
        if (!tensors[i]) return nb_error(NB_ERR_ARG, "%s: tensor '%s' is NULL", path, names[i]);
        if (!strcmp(names[i], "__metadata__"))
            return nb_error(NB_ERR_ARG, "%s: '__metadata__' is reserved, not a tensor name", path);
        if (tensors[i]->dtype != NB_F32 && tensors[i]->dtype != NB_F64)
            return nb_error(NB_ERR_ARG, "%s: tensor '%s' has an unknown dtype", path, names[i]);
    }
    for (int i = 0; i < nmeta; i++) {
        if (!keys[i] || !values[i])
            return nb_error(NB_ERR_ARG, "%s: metadata pair %d has a NULL key or value", path, i);
        if (!strncmp(keys[i], "nabla.", 6))
            return nb_error(NB_ERR_ARG, "%s: metadata key '%s': keys starting with 'nabla.' are reserved",
                            path, keys[i]);
    }
    int oom;
    const char *dup = find_duplicate(n, names, &oom);
    if (!oom && dup) return nb_error(NB_ERR_ARG, "%s: tensor name '%s' given twice", path, dup);
    if (!oom && (dup = find_duplicate(nmeta, keys, &oom)))
        return nb_error(NB_ERR_ARG, "%s: metadata key '%s' given twice", path, dup);
    if (oom) return nb_error(NB_ERR_NOMEM, "%s: out of memory", path);
    return NB_OK;
}

/* The bytes of t in row-major order: its data when contiguous, else a copy in *scratch (grown
 * as needed). NULL when out of memory. */
static const void *row_major(const nb_tensor *t, void **scratch, size_t *cap)
{
    if (nb_is_contiguous(t)) return t->data;
    const size_t bytes = (size_t)nb_numel(t) * nb_dtype_size(t->dtype);
    if (bytes > *cap) {
        void *p = realloc(*scratch, bytes);
        if (!p) return NULL;
        *scratch = p, *cap = bytes;
    }
    nb_copy_out(t, *scratch, nb_numel(t)); /* logical row-major order, strides and broadcasts resolved */
    return *scratch;
}

/* {"name": "hash", ...} of the tensors' bytes, as a JSON text in b. */
static int hashes_json(sbuf *b, int n, const char *const *names, const nb_tensor *const *tensors)
{
    void *scratch = NULL;
    size_t cap = 0;
    sb_add(b, "{", 1);
    for (int i = 0; i < n; i++) {
        const void *src = row_major(tensors[i], &scratch, &cap);
        if (!src) {
            free(scratch);
            return 0;
        }
        char hex[17];
        hash_hex(hex, src, (size_t)nb_numel(tensors[i]) * nb_dtype_size(tensors[i]->dtype));
        if (i) sb_add(b, ",", 1);
        sb_json_str(b, names[i]);
        sb_printf(b, ":\"%s\"", hex);
    }
    sb_add(b, "}", 1);
    free(scratch);
    return !b->oom;
}

/* The header, padded with spaces so that the data section starts at a multiple of 8. */
static nb_status build_header(sbuf *b, const char *path, int n, const char *const *names,
                              const nb_tensor *const *tensors, int nmeta, const char *const *keys,
                              const char *const *values)
{
    sbuf hashes = {0};
    if (!hashes_json(&hashes, n, names, tensors)) {
        free(hashes.p);
        return nb_error(NB_ERR_NOMEM, "%s: out of memory for the checksums", path);
    }
    sb_add(b, "{\"__metadata__\":{", 17);
    for (int i = 0; i < nmeta; i++) {
        sb_json_str(b, keys[i]);
        sb_add(b, ":", 1);
        sb_json_str(b, values[i]);
        sb_add(b, ",", 1);
    }
    sb_json_str(b, ST_KEY_FORMAT);
    sb_add(b, ":", 1);
    sb_json_str(b, ST_FORMAT);
    sb_add(b, ",", 1);
    sb_json_str(b, ST_KEY_HASHES);
    sb_add(b, ":", 1);
    sb_json_str(b, hashes.p);
    sb_add(b, "}", 1);
    free(hashes.p);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = tensors[i];
        sb_add(b, ",", 1);
        sb_json_str(b, names[i]);
        sb_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", dtype_tag(t->dtype));
        for (int d = 0; d < t->ndim; d++) sb_printf(b, d ? ",%" PRId64 : "%" PRId64, t->shape[d]);
        const uint64_t bytes = (uint64_t)nb_numel(t) * nb_dtype_size(t->dtype);
        sb_printf(b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + bytes);
        off += bytes;
    }
    sb_add(b, "}", 1);
    while (!b->oom && b->n % 8) sb_add(b, " ", 1);
    return b->oom ? nb_error(NB_ERR_NOMEM, "%s: out of memory for the header", path) : NB_OK;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        const ssize_t w = write(fd, p, n < (1u << 30) ? n : (1u << 30));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return -1;
        }
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* Header and data into fd. Returns 0, or -1 with errno set (ENOMEM for the scratch buffer). */
static int write_body(int fd, const sbuf *hdr, int n, const nb_tensor *const *tensors)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)hdr->n >> (8 * i));
    if (write_all(fd, len, 8) || write_all(fd, hdr->p, hdr->n)) return -1;

    void *scratch = NULL;
    size_t cap = 0;
    int r = 0;
    for (int i = 0; i < n && !r; i++) {
        const nb_tensor *t = tensors[i];
        const size_t bytes = (size_t)nb_numel(t) * nb_dtype_size(t->dtype);
        const void *src = row_major(t, &scratch, &cap);
        if (!src) {
            errno = ENOMEM;
            r = -1;
        } else if (bytes) {
            r = write_all(fd, src, bytes);
        }
    }
    const int err = errno;
    free(scratch);
    errno = err;
    return r;
}


nb_status nb_st_save(const char *path, int n, const char *const *names,
                     const nb_tensor *const *tensors, int nmeta, const char *const *keys,
                     const char *const *values)
{
    if (!path) return nb_error(NB_ERR_ARG, "nb_st_save: NULL path");
    nb_status st = check_save_args(path, n, names, tensors, nmeta, keys, values);
    if (st) return st;
    sbuf hdr = {0};
    if ((st = build_header(&hdr, path, n, names, tensors, nmeta, keys, values))) {
        free(hdr.p);
        return st;
    }

    char *tmp;
    const int fd = nb_tmp_create(path, &tmp);
    if (fd < 0) {
        free(hdr.p);
        return NB_ERR_IO;
    }
    const char *what = NULL;
    if (write_body(fd, &hdr, n, tensors)) what = "cannot write";
    else if (fsync(fd)) what = "cannot sync";
    int err = errno;
    if (close(fd) && !what) what = "cannot write", err = errno;
    st = nb_tmp_finish(path, tmp, !what);
    if (what) st = nb_error(err == ENOMEM ? NB_ERR_NOMEM : NB_ERR_IO, "%s: %s: %s", path, what, strerror(err));
    free(hdr.p);
    return st;
}

/* ---- parameter stores ----------------------------------------------------------------------- */

nb_status nb_params_save(nb_params *ps, const char *path, int nmeta, const char *const *keys,
                         const char *const *values)
{
    if (!ps || !path) return nb_error(NB_ERR_ARG, "nb_params_save: NULL argument");
    const int n = nb_params_count(ps);
    const char **names = malloc(((size_t)n + 1) * sizeof *names);
    const nb_tensor **ts = malloc(((size_t)n + 1) * sizeof *ts);
    nb_status st;
    if (!names || !ts) {
        st = nb_error(NB_ERR_NOMEM, "%s: out of memory", path);
    } else {
        for (int i = 0; i < n; i++) ts[i] = nb_params_at(ps, i), names[i] = ts[i]->name;
        st = nb_st_save(path, n, names, ts, nmeta, keys, values);
    }
    free(names), free(ts);
    return st;
}

nb_status nb_params_load_from(nb_params *ps, const nb_safetensors *f)
{
    if (!ps || !f) return nb_error(NB_ERR_ARG, "nb_params_load_from: NULL argument");
    const int n = nb_params_count(ps);
    /* check everything first, so that a failed load changes nothing */
    for (int i = 0; i < n; i++) {
        const nb_tensor *p = nb_params_at(ps, i);
        const st_entry *e = st_find(f, p->name);
        if (!e) return nb_error(NB_ERR_FORMAT, "%s: '%s' missing", f->path, p->name);
        if (strcmp(e->dtype, dtype_tag(p->dtype)))
            return nb_error(NB_ERR_DTYPE, "%s: '%s' is %s in the file, %s in the model", f->path,
                            p->name, e->dtype, dtype_tag(p->dtype));
        if (e->ndim != p->ndim || memcmp(e->shape, p->shape, (size_t)p->ndim * sizeof *p->shape)) {
            char fs[96], ms[96];
            return nb_error(NB_ERR_SHAPE, "%s: '%s' has shape %s in the file, %s in the model", f->path,
                            p->name, shape_str(fs, sizeof fs, e->ndim, e->shape),
                            shape_str(ms, sizeof ms, p->ndim, p->shape));
        }
    }
    for (int i = 0; i < n; i++) {
        nb_tensor *p = nb_params_at(ps, i);
        const st_entry *e = st_find(f, p->name);
        /* parameters are contiguous in their store's flat block */
        memcpy(p->data, e->data, e->end - e->begin);
    }
    return NB_OK;
}

nb_status nb_params_load(nb_params *ps, const char *path)
{
    if (!ps || !path) return nb_error(NB_ERR_ARG, "nb_params_load: NULL argument");
    nb_safetensors *f;
    nb_status st = nb_st_open(&f, path);
    if (st) return st;
    st = nb_params_load_from(ps, f);
    nb_st_close(f);
    return st;
}
