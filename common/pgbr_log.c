/*
 * pgbr_log.c
 *		Frontend logging.
 */
#include "pgbr_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static PgbrLogLevel console_level = PGBR_LOG_WARN;
static PgbrLogLevel file_level = PGBR_LOG_OFF;
static bool with_time = false;
static FILE *log_file = NULL;
static int	process_id = 0;

static const char *const level_names[] = {
	"OFF", "ERROR", "WARN", "INFO", "DETAIL", "DEBUG", "TRACE"
};

PgbrLogLevel
pgbr_log_level_parse(const char *s)
{
	static const char *const lower[] = {
		"off", "error", "warn", "info", "detail", "debug", "trace"
	};

	for (int i = 0; s && i < (int) PGBR_LENGTHOF(lower); i++)
		if (strcmp(s, lower[i]) == 0)
			return (PgbrLogLevel) i;
	return PGBR_LOG_INFO;
}

void
pgbr_log_setup(PgbrLogLevel console, bool timestamps)
{
	console_level = console;
	with_time = timestamps;
}

bool
pgbr_log_set_file(const char *path, PgbrLogLevel level, PgbrError *err)
{
	if (log_file)
		fclose(log_file);
	log_file = NULL;
	file_level = PGBR_LOG_OFF;
	if (path == NULL || level == PGBR_LOG_OFF)
		return true;
	log_file = fopen(path, "a");
	if (log_file == NULL)
		return pgbr_error_errno(err, PGBR_ERR_FILE_OPEN, "could not open log file \"%s\"", path);
	setvbuf(log_file, NULL, _IOLBF, 0);
	file_level = level;
	return true;
}

void
pgbr_log_set_process(int id)
{
	process_id = id;
}

/*
 * Messages carry names that come from clients and servers (WAL names,
 * stanzas, paths, HELLO's program): control characters are escaped, so a
 * message is always one line and nobody can forge log lines.
 */
static const char *
one_line(const char *msg, char *out, size_t outlen)
{
	size_t		o = 0;

	for (const unsigned char *p = (const unsigned char *) msg; *p && o + 5 < outlen; p++)
	{
		if (*p == '\n' || *p == '\r')
		{
			out[o++] = '\\';
			out[o++] = *p == '\n' ? 'n' : 'r';
		}
		else if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			o += (size_t) snprintf(out + o, outlen - o, "\\x%02x", *p);
		else
			out[o++] = (char) *p;
	}
	out[o] = '\0';
	return out;
}

static void
emit(FILE *f, PgbrLogLevel level, bool stamp, const char *raw)
{
	char		ts[64] = "";
	char		msg[4 * 4096 + 8];

	one_line(raw, msg, sizeof(msg));

	if (stamp)
	{
		struct timeval tv;
		struct tm	tm;

		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(f, "%s.%03d ", ts, (int) (tv.tv_usec / 1000));
	}
	fprintf(f, "P%02d %6s: %s\n", process_id, level_names[level], msg);
	fflush(f);
}

void
pgbr_log(PgbrLogLevel level, const char *fmt,...)
{
	char		msg[4096];
	va_list		ap;

	if (level > console_level && level > file_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (level <= console_level)
		emit(level <= PGBR_LOG_WARN ? stderr : stdout, level, with_time, msg);
	if (log_file && level <= file_level)
		emit(log_file, level, true, msg);
}

void
pgbr_log_error(const PgbrError *err)
{
	char		line[2048];
	char		safe[4 * 1024 + 8];

	snprintf(line, sizeof(line), "ERROR: [%03d]: %s", err->code,
			 one_line(err->message, safe, sizeof(safe)));
	if (with_time)
		pgbr_log(PGBR_LOG_ERROR, "[%03d]: %s", err->code, err->message);
	else
		fprintf(stderr, "%s\n", line);
	if (err->hint[0])
	{
		if (with_time)
			pgbr_log(PGBR_LOG_ERROR, "HINT: %s", err->hint);
		else
			fprintf(stderr, "HINT: %s\n", one_line(err->hint, safe, sizeof(safe)));
	}
	if (!with_time && log_file)
		emit(log_file, PGBR_LOG_ERROR, true, line);
}
