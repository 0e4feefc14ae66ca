/* arena.h - one bump allocator per compilation.
 *
 * Tokens, AST nodes, interned names, symbolic expressions and the Model IR
 * all live in one arena that is freed at once (STYLE.md "Memory and IR").
 * All allocation goes through one hook (dam_alloc_hook) so that a test build
 * can make the N-th allocation fail.  Allocation failure is fatal: the arena
 * prints a message and exits with status 3 (out of memory is not a user error
 * we can recover from inside a compiler pass).
 */
#ifndef DAM_ARENA_H
#define DAM_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
	ArenaBlock *head;
	size_t total;           /* bytes handed out, for statistics */
} Arena;

/* Single allocation hook: realloc semantics, (p, 0) frees. */
typedef void *(*DamAllocFn)(void *p, size_t n);
extern DamAllocFn dam_alloc_hook;

void *dam_xrealloc(void *p, size_t n);    /* via the hook; never returns NULL for n > 0 */
void  dam_free(void *p);

void  arena_init(Arena *a);
void  arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t n);    /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Growable array of fixed-size items backed by dam_xrealloc (not the arena). */
#define VEC(T) struct { T *v; size_t n, cap; }
#define vec_push(vec, x) do { \
	if ((vec)->n == (vec)->cap) { \
		(vec)->cap = (vec)->cap ? 2 * (vec)->cap : 8; \
		(vec)->v = dam_xrealloc((vec)->v, (vec)->cap * sizeof *(vec)->v); \
	} \
	(vec)->v[(vec)->n++] = (x); \
} while (0)
#define vec_free(vec) do { dam_free((vec)->v); (vec)->v = NULL; (vec)->n = (vec)->cap = 0; } while (0)

#endif
