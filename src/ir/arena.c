/* arena.c - bump allocator and the single allocation hook (see arena.h). */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ArenaBlock {
	ArenaBlock *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

static void *default_alloc(void *p, size_t n)
{
	if (n == 0) {
		free(p);
		return NULL;
	}
	return realloc(p, n);
}

DamAllocFn dam_alloc_hook = default_alloc;

void *dam_xrealloc(void *p, size_t n)
{
	void *q = dam_alloc_hook(p, n ? n : 1);
	if (!q) {
		fputs("damc: out of memory\n", stderr);
		exit(3);
	}
	return q;
}

void dam_free(void *p)
{
	if (p)
		dam_alloc_hook(p, 0);
}

void arena_init(Arena *a)
{
	a->head = NULL;
	a->total = 0;
}

void arena_free(Arena *a)
{
	ArenaBlock *b = a->head;
	while (b) {
		ArenaBlock *next = b->next;
		dam_free(b);
		b = next;
	}
	a->head = NULL;
	a->total = 0;
}

void *arena_alloc(Arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	ArenaBlock *b = a->head;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		b = dam_xrealloc(NULL, sizeof *b + cap);
		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	a->total += n;
	memset(p, 0, n);
	return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
	char *d = arena_alloc(a, n + 1);
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

char *arena_strdup(Arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *d = arena_alloc(a, (size_t)(n < 0 ? 0 : n) + 1);
	vsnprintf(d, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return d;
}
