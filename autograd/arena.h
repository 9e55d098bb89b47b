/* autograd/arena.h — internal: the per-step bump allocator behind a tape.
 *
 * Allocation bumps a pointer in the current chunk; a full chunk is followed by a new one twice as
 * large. Reset rewinds to the first chunk and, if one step needed several that hold more than a
 * quarter beyond what it used, replaces them by one chunk of the size that step used. Either
 * way a loop of identical steps stops allocating after its first step and holds little more
 * memory than a step needs.
 */
#ifndef NB_ARENA_H
#define NB_ARENA_H

#include <stddef.h>

typedef struct nb_chunk nb_chunk;

typedef struct nb_arena {
    nb_chunk *head, *cur;
    size_t first_size;
} nb_arena;

enum { NB_ARENA_ALIGN = 64 };

void nb_arena_init(nb_arena *a, size_t first_size);
/* 64-byte aligned, uninitialised; NULL when out of memory. */
void *nb_arena_alloc(nb_arena *a, size_t bytes);
void nb_arena_reset(nb_arena *a);
void nb_arena_free(nb_arena *a);
size_t nb_arena_capacity(const nb_arena *a);

#endif
