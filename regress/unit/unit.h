/*
 * unit.h
 *		A tiny header-only TAP producer for the unit tests of common/.
 *
 *		ok(cond, fmt, ...)				pass if cond
 *		is_int(got, want, fmt, ...)		integers equal (prints both if not)
 *		is_str(got, want, fmt, ...)		strings equal, NULL-safe
 *		like(got, substr, fmt, ...)		got contains substr
 *		is_mem(got, want, len, fmt, ...)	len bytes equal (first difference shown)
 *		diag(fmt, ...)					a "# ..." line
 *		skip(fmt, ...)					"ok N # skip reason"
 *		done_testing()					prints the plan "1..N" and
 *										"# P passed, F failed" (the last
 *										line), returns the exit status
 *
 * Each check prints "ok N - desc" or "not ok N - desc" at once, so the
 * output shows how far a crashing test got; the plan comes last, which TAP
 * allows, and a missing plan tells a harness the program died.
 */
#ifndef PGBR_UNIT_H
#define PGBR_UNIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define UNIT_PRINTF(f, a)	__attribute__((format(printf, f, a)))
#else
#define UNIT_PRINTF(f, a)
#endif

/* xorshift64: reproducible test data, the same bytes on every run */
static inline uint8_t
unit_rnd(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return (uint8_t) (*state >> 24);
}

static int	unit_count;
static int	unit_passed;
static int	unit_failed;

static inline bool unit_vreport(bool cond, const char *fmt, va_list ap) UNIT_PRINTF(2, 0);

static inline bool
unit_vreport(bool cond, const char *fmt, va_list ap)
{
	unit_count++;
	if (cond)
		unit_passed++;
	else
		unit_failed++;
	printf("%sok %d - ", cond ? "" : "not ", unit_count);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

static inline void diag(const char *fmt,...) UNIT_PRINTF(1, 2);

static inline void
diag(const char *fmt,...)
{
	va_list		ap;
	char		line[4096];
	const char *p;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* every line of a multi-line diagnostic is a TAP comment */
	p = line;
	do
	{
		const char *nl = strchr(p, '\n');
		int			n = nl ? (int) (nl - p) : (int) strlen(p);

		printf("#   %.*s\n", n, p);
		p = nl ? nl + 1 : NULL;
	} while (p != NULL && *p != '\0');
	fflush(stdout);
}

static inline bool ok(bool cond, const char *fmt,...) UNIT_PRINTF(2, 3);

static inline bool
ok(bool cond, const char *fmt,...)
{
	va_list		ap;
	bool		r;

	va_start(ap, fmt);
	r = unit_vreport(cond, fmt, ap);
	va_end(ap);
	return r;
}

static inline bool is_int(long long got, long long want, const char *fmt,...) UNIT_PRINTF(3, 4);

static inline bool
is_int(long long got, long long want, const char *fmt,...)
{
	va_list		ap;
	bool		r;

	va_start(ap, fmt);
	r = unit_vreport(got == want, fmt, ap);
	va_end(ap);
	if (!r)
		diag("got:      %lld\nexpected: %lld", got, want);
	return r;
}

static inline bool is_str(const char *got, const char *want, const char *fmt,...) UNIT_PRINTF(3, 4);

static inline bool
is_str(const char *got, const char *want, const char *fmt,...)
{
	va_list		ap;
	bool		r;

	if (got == NULL || want == NULL)
		r = got == want;
	else
		r = strcmp(got, want) == 0;
	va_start(ap, fmt);
	r = unit_vreport(r, fmt, ap);
	va_end(ap);
	if (!r)
		diag("got:      %s%s%s\nexpected: %s%s%s",
			 got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
			 want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
	return r;
}

static inline bool like(const char *got, const char *substr, const char *fmt,...) UNIT_PRINTF(3, 4);

static inline bool
like(const char *got, const char *substr, const char *fmt,...)
{
	va_list		ap;
	bool		r;

	r = got != NULL && strstr(got, substr) != NULL;
	va_start(ap, fmt);
	r = unit_vreport(r, fmt, ap);
	va_end(ap);
	if (!r)
		diag("got:      %s%s%s\nexpected to contain: \"%s\"",
			 got ? "\"" : "", got ? got : "NULL", got ? "\"" : "", substr);
	return r;
}

static inline bool is_mem(const void *got, const void *want, size_t len, const char *fmt,...) UNIT_PRINTF(4, 5);

static inline bool
is_mem(const void *got, const void *want, size_t len, const char *fmt,...)
{
	va_list		ap;
	bool		r;
	size_t		i = 0;

	if (got == NULL || want == NULL)
		r = len == 0;
	else
	{
		const unsigned char *g = got;
		const unsigned char *w = want;

		while (i < len && g[i] == w[i])
			i++;
		r = i == len;
	}
	va_start(ap, fmt);
	r = unit_vreport(r, fmt, ap);
	va_end(ap);
	if (!r)
	{
		if (got == NULL || want == NULL)
			diag("NULL pointer compared over %zu bytes", len);
		else
			diag("first difference at byte %zu of %zu: got 0x%02x, expected 0x%02x",
				 i, len, ((const unsigned char *) got)[i],
				 ((const unsigned char *) want)[i]);
	}
	return r;
}

static inline void skip(const char *fmt,...) UNIT_PRINTF(1, 2);

/* a check that cannot run here: "ok N # skip reason", counted as passed */
static inline void
skip(const char *fmt,...)
{
	va_list		ap;

	unit_count++;
	unit_passed++;
	printf("ok %d # skip ", unit_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* prints the plan and the summary; returns the exit status of the program */
static inline int
done_testing(void)
{
	printf("1..%d\n", unit_count);
	printf("# %d passed, %d failed\n", unit_passed, unit_failed);
	fflush(stdout);
	return unit_failed > 0 || unit_count == 0 ? 1 : 0;
}

#endif							/* PGBR_UNIT_H */
