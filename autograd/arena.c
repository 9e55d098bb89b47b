/* autograd/arena.c — see arena.h. */
#include <stdint.h>
#include <stdlib.h>

#include "autograd/arena.h"

struct nb_chunk {
    nb_chunk *next;
    size_t cap, used;
    unsigned char *mem; /* cap bytes, NB_ARENA_ALIGN-aligned */
};

static nb_chunk *chunk_new(size_t cap)
{
    nb_chunk *c = malloc(sizeof *c);
    if (!c) return NULL;
    c->mem = aligned_alloc(NB_ARENA_ALIGN, cap);
    if (!c->mem) {
        free(c);
        return NULL;
    }
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

void nb_arena_init(nb_arena *a, size_t first_size)
{
    a->head = a->cur = NULL;
    a->first_size = (first_size + NB_ARENA_ALIGN - 1) & ~(size_t)(NB_ARENA_ALIGN - 1);
}

void *nb_arena_alloc(nb_arena *a, size_t bytes)
{
    bytes = (bytes + NB_ARENA_ALIGN - 1) & ~(size_t)(NB_ARENA_ALIGN - 1);
    if (bytes == 0) bytes = NB_ARENA_ALIGN;
    while (a->cur && a->cur->cap - a->cur->used < bytes && a->cur->next) {
        a->cur = a->cur->next; /* after a reset, chunks further on may still be free */
        a->cur->used = 0;
    }
    if (!a->cur || a->cur->cap - a->cur->used < bytes) {
        size_t cap = a->cur ? 2 * a->cur->cap : a->first_size;
        if (cap < bytes) cap = bytes;
        nb_chunk *c = chunk_new(cap);
        if (!c) return NULL;
        if (a->cur) {
            c->next = a->cur->next;
            a->cur->next = c;
        } else {
            a->head = c;
        }
        a->cur = c;
    }
    void *p = a->cur->mem + a->cur->used;
    a->cur->used += bytes;
    return p;
}

void nb_arena_reset(nb_arena *a)
{
    size_t used = 0, cap = 0;
    for (const nb_chunk *c = a->head, *end = NULL; c; c = c->next) {
        if (!end) used += c->used;
        if (c == a->cur) end = c;
        cap += c->cap;
    }
    /* Several chunks become one as large as the step used: allocations are rounded to the
     * alignment, so the same sequence of them fits it exactly. Unless they hold little more
     * than that already: the same sequence fits them as it did, and a new chunk would be
     * memory touched a second time (an evaluation's 80 MB step: 20k page faults). */
    if (a->head && a->head->next && cap > used + used / 4) {
        nb_chunk *one = chunk_new(used > a->first_size ? used : a->first_size);
        if (one) {
            nb_arena_free(a);
            a->head = one;
        }
    }
    a->cur = a->head;
    if (a->cur) a->cur->used = 0;
}

void nb_arena_free(nb_arena *a)
{
    for (nb_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c->mem);
        free(c);
    }
    a->head = a->cur = NULL;
}

size_t nb_arena_capacity(const nb_arena *a)
{
    size_t n = 0;
    for (const nb_chunk *c = a->head; c; c = c->next) n += c->cap;
    return n;
}
