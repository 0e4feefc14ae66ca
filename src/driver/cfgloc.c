/* cfgloc.c - the config scanner of cfgloc.h. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cfgloc.h"

static void lx_push(Lx *lx, char kind, int depth, uint32_t line, uint32_t col, size_t off, size_t len)
{
	if (lx->n == lx->cap) {
		lx->cap = lx->cap ? 2 * lx->cap : 256;
		lx->t = realloc(lx->t, lx->cap * sizeof *lx->t);
		if (!lx->t)
			exit(3);
	}
	lx->t[lx->n++] = (LxTok){ kind, depth, line, col, off, len };
}

/* Length of the long bracket opening at s ("[[", "[==["), or 0. */
static size_t lx_long_open(const char *s, size_t *level)
{
	size_t k = 1;
	while (s[k] == '=')
		k++;
	*level = k - 1;
	return s[0] == '[' && s[k] == '[' ? k + 1 : 0;
}

static size_t lx_long_body(const char *s, size_t level)
{
	for (size_t i = 0; s[i]; i++) {
		if (s[i] != ']')
			continue;
		size_t k = 1;
		while (s[i + k] == '=')
			k++;
		if (k - 1 == level && s[i + k] == ']')
			return i + k + 1;
	}
	return strlen(s);
}

void lx_scan(Lx *lx, const char *s)
{
	uint32_t line = 1;
	size_t bol = 0, i = 0, lev;
	int depth = 0;
	lx->s = s;
	while (s[i]) {
		char c = s[i];
		size_t start = i, n = 1, ol;
		uint32_t l0 = line, c0 = (uint32_t)(i - bol + 1);
		char kind = c;
		if (c == '\n') { line++; bol = ++i; continue; }
		if (c == ' ' || c == '\t' || c == '\r') { i++; continue; }
		if (c == '-' && s[i + 1] == '-') {
			if ((ol = lx_long_open(s + i + 2, &lev)))
				n = 2 + ol + lx_long_body(s + i + 2 + ol, lev);
			else
				n = strcspn(s + i, "\n");
			kind = 0;
		} else if ((ol = lx_long_open(s + i, &lev))) {
			n = ol + lx_long_body(s + i + ol, lev);
			kind = 's';
		} else if (c == '"' || c == '\'') {
			while (s[i + n] && s[i + n] != c && s[i + n] != '\n')
				n += s[i + n] == '\\' && s[i + n + 1] ? 2 : 1;
			n += s[i + n] == c;
			kind = 's';
		} else if (c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z')) {
			while (s[i + n] == '_' || ((s[i + n] | 32) >= 'a' && (s[i + n] | 32) <= 'z') ||
			       (s[i + n] >= '0' && s[i + n] <= '9'))
				n++;
			kind = 'n';
		} else if ((c >= '0' && c <= '9') || (c == '.' && s[i + 1] >= '0' && s[i + 1] <= '9')) {
			while (s[i + n] && (strchr("._", s[i + n]) || ((s[i + n] | 32) >= 'a' && (s[i + n] | 32) <= 'z') ||
			                    (s[i + n] >= '0' && s[i + n] <= '9') ||
			                    ((s[i + n] == '+' || s[i + n] == '-') && strchr("eEpP", s[i + n - 1]))))
				n++;
			kind = '0';
		} else if (strchr("=~<>", c) && s[i + 1] == '=') {
			n = 2;
			kind = 'E';
		}
		for (size_t k = start; k < start + n; k++)     /* newlines inside comments, strings */
			if (s[k] == '\n') { line++; bol = k + 1; }
		i = start + n;
		if (!kind)
			continue;
		if (kind == '}')
			depth--;
		lx_push(lx, kind, depth, l0, c0, start, n);
		if (kind == '{')
			depth++;
	}
}

static bool lx_is(const Lx *lx, size_t k, char kind, const char *text)
{
	if (k >= lx->n || lx->t[k].kind != kind)
		return false;
	return !text || (strlen(text) == lx->t[k].len && !memcmp(lx->s + lx->t[k].off, text, lx->t[k].len));
}

/* The token of the last `key =` at depth in [from, to), or -1. */
static long lx_key(const Lx *lx, size_t from, size_t to, int depth, const char *key)
{
	long found = -1;
	for (size_t k = from; k < to && k < lx->n; k++)
		if (lx->t[k].depth == depth && lx_is(lx, k, 'n', key) && lx_is(lx, k + 1, '=', NULL))
			found = (long)k;
	return found;
}

/* After `key = {` at token k: the range of the table's inside. */
static bool lx_table(const Lx *lx, long k, size_t *from, size_t *to)
{
	if (k < 0 || !lx_is(lx, (size_t)k + 2, '{', NULL))
		return false;
	size_t open = (size_t)k + 2, e = open + 1;
	while (e < lx->n && !(lx->t[e].kind == '}' && lx->t[e].depth == lx->t[open].depth))
		e++;
	*from = open + 1;
	*to = e;
	return true;
}

static Loc lx_loc(const Lx *lx, long k)
{
	return k < 0 ? (Loc){ 0, 0, 0 } : (Loc){ lx->file, lx->t[k].line, lx->t[k].col };
}

Loc lx_key_loc(const Lx *lx, const char *top, const char *k1, const char *k2)
{
	if (!lx->n)
		return (Loc){ 0, 0, 0 };
	long ks = lx_key(lx, 0, lx->n, 0, top);
	size_t a, b;
	if (!k1 || !lx_table(lx, ks, &a, &b))
		return lx_loc(lx, ks);
	long k = lx_key(lx, a, b, 1, k1);
	if (k < 0)
		return lx_loc(lx, ks);
	if (!k2 || !lx_table(lx, k, &a, &b))
		return lx_loc(lx, k);
	long k3 = lx_key(lx, a, b, 2, k2);
	return lx_loc(lx, k3 >= 0 ? k3 : k);
}

Loc lx_row_loc(const Lx *lx, size_t row)
{
	long k = lx->n ? lx_key(lx, 0, lx->n, 0, "dataset") : -1;
	size_t a, b;
	if (!lx_table(lx, k, &a, &b))
		return lx_loc(lx, k);
	for (size_t i = a; i < b; i++)
		if (lx->t[i].kind == '{' && lx->t[i].depth == 1 && row-- == 0)
			return lx_loc(lx, (long)i);
	return lx_loc(lx, k);
}


void lx_free(Lx *lx)
{
	free(lx->t);
	lx->t = NULL;
	lx->n = lx->cap = 0;
}

char *lx_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
	char *d = malloc(n + 1);
	if (!d)
		exit(3);
	memcpy(d, path, n);
	d[n] = 0;
	return d;
}
