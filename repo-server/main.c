/*
 * main.c
 *		pgbr-server: the repository host's daemon.  Runs in the foreground
 *		(systemd style), accepts mutual-TLS clients and serves each in a
 *		child process.  SIGHUP re-reads the configuration (authorisation
 *		included) without dropping clients; SIGTERM stops it cleanly.
 */
#include "server.h"
#include "pgbr_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_sighup = 0;
static volatile sig_atomic_t got_sigterm = 0;
static volatile sig_atomic_t got_sigchld = 0;
static int	wake_pipe[2] = {-1, -1};

typedef struct Child
{
	pid_t		pid;
	char		addr[64];
} Child;

static Child *children = NULL;
static int	nchildren = 0;

static void
on_signal(int sig)
{
	int			save = errno;
	char		c = (char) sig;

	if (sig == SIGHUP)
		got_sighup = 1;
	else if (sig == SIGCHLD)
		got_sigchld = 1;
	else
		got_sigterm = 1;
	if (write(wake_pipe[1], &c, 1) < 0)
	{
		/* pipe full: a wake-up is pending anyway */
	}
	errno = save;
}

static void
usage(void)
{
	printf("pgbr-server " PGBR_VERSION " - pgbr repository server\n\n"
		   "Usage: pgbr-server [--config=PATH] [--option=value ...]\n"
		   "       pgbr-server version | help\n\n"
		   "Runs in the foreground. Reads %s unless --config or PGBR_CONFIG\n"
		   "says otherwise. SIGHUP reloads the configuration, SIGTERM stops.\n",
		   PGBR_CONFIG_DEFAULT_PATH);
}

static void
settings_free(ServerSettings *s)
{
	if (s == NULL)
		return;
	auth_free(s);
	SSL_CTX_free(s->ctx);
	pgbr_config_free(s->cfg);
	pgbr_free(s->repo_path);
	pgbr_free(s);
}

/* builds settings from the file plus the command-line options */
static ServerSettings *
settings_load(const char *path, int argc, char **argv, PgbrError *err)
{
	ServerSettings *s = pgbr_malloc(sizeof(ServerSettings));

	memset(s, 0, sizeof(ServerSettings));
	s->cfg = pgbr_config_create();
	if (!pgbr_config_load_file(s->cfg, path, false, err))
		goto fail;
	for (int i = 1; i < argc; i++)
	{
		char	   *arg = argv[i];
		char	   *eq;
		char		name[128];

		if (strncmp(arg, "--config=", 9) == 0)
			continue;
		if (strncmp(arg, "--", 2) != 0 || (eq = strchr(arg, '=')) == NULL ||
			(size_t) (eq - arg - 2) >= sizeof(name))
		{
			pgbr_error_set(err, PGBR_ERR_OPTION, "invalid argument \"%s\"", arg);
			pgbr_error_hint(err, "Options are given as --name=value.");
			goto fail;
		}
		memcpy(name, arg + 2, (size_t) (eq - arg - 2));
		name[eq - arg - 2] = '\0';
		if (!pgbr_config_set_option(s->cfg, name, eq + 1, err))
			goto fail;
	}
	if ((strcmp(pgbr_config_get(s->cfg, "repo1-type"), "posix") == 0 &&
		 !pgbr_config_require(s->cfg, "repo1-path", err)) ||
		!pgbr_config_require(s->cfg, "tls-server-cert-file", err) ||
		!pgbr_config_require(s->cfg, "tls-server-key-file", err) ||
		!pgbr_config_require(s->cfg, "tls-server-ca-file", err))
		goto fail;
	{
		/* the back end's options are checked now, not by the first client */
		Storage    *probe = storage_open(s->cfg, err);

		if (probe == NULL)
			goto fail;
		s->repo_path = pgbr_strdup(probe->where);
		storage_close(probe);
	}
	s->io_timeout_ms = (int) pgbr_config_get_int(s->cfg, "io-timeout") * 1000;
	s->max_connections = (int) pgbr_config_get_int(s->cfg, "tls-server-max-connections");
	s->max_per_client = (int) pgbr_config_get_int(s->cfg, "tls-server-max-per-client");
	if (!auth_parse(s, err))
		goto fail;
	s->ctx = pgbr_tls_server_ctx(pgbr_config_get(s->cfg, "tls-server-cert-file"),
								 pgbr_config_get(s->cfg, "tls-server-key-file"),
								 pgbr_config_get(s->cfg, "tls-server-ca-file"), err);
	if (s->ctx == NULL)
		goto fail;
	return s;

fail:
	settings_free(s);
	return NULL;
}

static void
apply_logging(const ServerSettings *s)
{
	PgbrError	err;
	const char *log_path = pgbr_config_get(s->cfg, "log-path");

	pgbr_log_setup(pgbr_log_level_parse(pgbr_config_get(s->cfg, "log-level-console")), true);
	pgbr_error_init(&err);
	if (log_path)
	{
		char		file[4200];

		snprintf(file, sizeof(file), "%s/pgbr-server.log", log_path);
		if (!pgbr_log_set_file(file, pgbr_log_level_parse(pgbr_config_get(s->cfg, "log-level-file")),
							   &err))
			pgbr_log_error(&err);
	}
}

static int
listen_on(const ServerSettings *s, PgbrError *err)
{
	const char *addr = pgbr_config_get(s->cfg, "tls-server-address");
	int			port = (int) pgbr_config_get_int(s->cfg, "tls-server-port");
	struct addrinfo hints,
			   *res;
	char		portstr[16];
	int			fd = -1,
				rc,
				one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(strcmp(addr, "*") == 0 ? NULL : addr, portstr, &hints, &res);
	if (rc != 0)
	{
		pgbr_error_set(err, PGBR_ERR_HOST_CONNECT, "could not resolve tls-server-address \"%s\": %s",
					   addr, gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
	{
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		pgbr_error_errno(err, PGBR_ERR_HOST_CONNECT, "could not listen on %s:%d", addr, port);
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
	{
		pgbr_error_init(err);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
	return fd;
}

static void
reap_children(void)
{
	pid_t		pid;
	int			status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
	{
		for (int i = 0; i < nchildren; i++)
		{
			if (children[i].pid != pid)
				continue;
			if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
				pgbr_log(PGBR_LOG_WARN, "session process %d for %s was terminated by signal %d",
						 (int) pid, children[i].addr, WTERMSIG(status));
			children[i] = children[--nchildren];
			break;
		}
	}
}

static int
count_from(const char *addr)
{
	int			n = 0;

	for (int i = 0; i < nchildren; i++)
		if (strcmp(children[i].addr, addr) == 0)
			n++;
	return n;
}

static void
accept_one(ServerSettings *s, int lfd)
{
	struct sockaddr_storage sa;
	socklen_t	salen = sizeof(sa);
	char		host[64] = "?";
	int			fd = accept4(lfd, (struct sockaddr *) &sa, &salen, SOCK_CLOEXEC);
	pid_t		pid;

	if (fd < 0)
		return;
	getnameinfo((struct sockaddr *) &sa, salen, host, sizeof(host), NULL, 0, NI_NUMERICHOST);
	if (nchildren >= s->max_connections)
	{
		pgbr_log(PGBR_LOG_WARN, "refused connection from %s: %d connections open, the limit (tls-server-max-connections) is %d",
				 host, nchildren, s->max_connections);
		close(fd);
		return;
	}
	if (count_from(host) >= s->max_per_client)
	{
		pgbr_log(PGBR_LOG_WARN, "refused connection from %s: it has %d connections open, the limit (tls-server-max-per-client) is %d",
				 host, count_from(host), s->max_per_client);
		close(fd);
		return;
	}
	pid = fork();
	if (pid < 0)
	{
		pgbr_log(PGBR_LOG_ERROR, "could not fork a session process: %s", strerror(errno));
		close(fd);
		return;
	}
	if (pid == 0)
	{
		/* child: default signals, no listener, serve, exit */
		signal(SIGHUP, SIG_IGN);
		signal(SIGTERM, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		close(lfd);
		close(wake_pipe[0]);
		close(wake_pipe[1]);
		pgbr_log_set_process(1);
		session_run(s, fd);
		exit(0);
	}
	close(fd);
	children = pgbr_realloc(children, sizeof(Child) * (size_t) (nchildren + 1));
	children[nchildren].pid = pid;
	snprintf(children[nchildren].addr, sizeof(children[nchildren].addr), "%s", host);
	nchildren++;
}

int
main(int argc, char **argv)
{
	const char *config = getenv("PGBR_CONFIG");
	ServerSettings *s;
	PgbrError	err;
	struct sigaction sa;
	int			lfd;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "version") == 0 || strcmp(argv[i], "--version") == 0)
		{
			printf("pgbr-server %s\n", PGBR_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "help") == 0 || strcmp(argv[i], "--help") == 0)
		{
			usage();
			return 0;
		}
		if (strncmp(argv[i], "--config=", 9) == 0)
			config = argv[i] + 9;
	}
	if (config == NULL)
		config = PGBR_CONFIG_DEFAULT_PATH;

	pgbr_log_setup(PGBR_LOG_INFO, true);
	pgbr_error_init(&err);
	s = settings_load(config, argc, argv, &err);
	if (s == NULL)
	{
		pgbr_log_error(&err);
		return 1;
	}
	apply_logging(s);

	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
	{
		pgbr_log(PGBR_LOG_ERROR, "could not create pipe: %s", strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lfd = listen_on(s, &err);
	if (lfd < 0)
	{
		pgbr_log_error(&err);
		return 1;
	}
	pgbr_log(PGBR_LOG_INFO, "pgbr-server %s listening on %s:%d, repository in %s",
			 PGBR_VERSION, pgbr_config_get(s->cfg, "tls-server-address"),
			 (int) pgbr_config_get_int(s->cfg, "tls-server-port"), s->repo_path);

	while (!got_sigterm)
	{
		struct pollfd p[2];

		p[0].fd = lfd;
		p[0].events = POLLIN;
		p[1].fd = wake_pipe[0];
		p[1].events = POLLIN;
		if (poll(p, 2, 5000) < 0 && errno != EINTR)
		{
			pgbr_log(PGBR_LOG_ERROR, "poll failed: %s", strerror(errno));
			break;
		}
		if (p[1].revents & POLLIN)
		{
			char		buf[64];

			while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
				;
		}
		if (got_sigchld)
		{
			got_sigchld = 0;
			reap_children();
		}
		if (got_sighup)
		{
			ServerSettings *ns;

			got_sighup = 0;
			pgbr_error_init(&err);
			ns = settings_load(config, argc, argv, &err);
			if (ns == NULL)
			{
				pgbr_log(PGBR_LOG_ERROR, "configuration not reloaded, keeping the previous one: [%03d] %s",
						 err.code, err.message);
			}
			else
			{
				settings_free(s);
				s = ns;
				apply_logging(s);
				pgbr_log(PGBR_LOG_INFO, "configuration reloaded from \"%s\" (%d tls-server-auth entries)",
						 config, s->nrules);
			}
		}
		if (!got_sigterm && (p[0].revents & POLLIN))
			accept_one(s, lfd);
	}

	pgbr_log(PGBR_LOG_INFO, "shutting down: stopping %d session(s)", nchildren);
	close(lfd);
	for (int i = 0; i < nchildren; i++)
		kill(children[i].pid, SIGTERM);
	for (int waited = 0; nchildren > 0 && waited < 100; waited++)
	{
		reap_children();
		if (nchildren > 0)
		{
			struct timespec ts = {0, 100 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	}
	settings_free(s);
	pgbr_log(PGBR_LOG_INFO, "pgbr-server stopped");
	return 0;
}
