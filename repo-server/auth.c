/*
 * auth.c
 *		Client authorisation: certificate names mapped to stanzas by the
 *		tls-server-auth option (NAME=stanza[,stanza...], "*" for all).
 */
#include "server.h"
#include "pgbr_proto.h"
#include "pgbr_tls.h"

#include <stdio.h>

void
auth_free(ServerSettings *s)
{
	for (int i = 0; i < s->nrules; i++)
	{
		for (char **p = s->rules[i].stanzas; p && *p; p++)
			pgbr_free(*p);
		pgbr_free(s->rules[i].stanzas);
		pgbr_free(s->rules[i].name);
	}
	pgbr_free(s->rules);
	s->rules = NULL;
	s->nrules = 0;
}

bool
auth_parse(ServerSettings *s, PgbrError *err)
{
	const char *const *values;
	int			n = pgbr_config_get_list(s->cfg, "tls-server-auth", &values);

	s->rules = pgbr_malloc(sizeof(AuthRule) * (size_t) (n ? n : 1));
	s->nrules = 0;
	for (int i = 0; i < n; i++)
	{
		const char *v = values[i];
		const char *eq = strrchr(v, '=');
		AuthRule   *r = &s->rules[s->nrules];
		char	   *list,
				   *tok,
				   *save = NULL;
		int			count = 0;

		if (eq == NULL || eq == v || eq[1] == '\0')
		{
			pgbr_error_set(err, PGBR_ERR_OPTION,
						   "invalid tls-server-auth value \"%s\" (%s)", v,
						   pgbr_config_source(s->cfg, "tls-server-auth"));
			pgbr_error_hint(err, "Use tls-server-auth=CLIENT-CN=STANZA[,STANZA...] or CLIENT-CN=* for every stanza.");
			return false;
		}
		r->name = pgbr_malloc((size_t) (eq - v) + 1);
		memcpy(r->name, v, (size_t) (eq - v));
		r->name[eq - v] = '\0';
		r->stanzas = pgbr_malloc(sizeof(char *) * (strlen(eq) + 1));
		s->nrules++;
		list = pgbr_strdup(eq + 1);
		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		{
			if (strcmp(tok, "*") != 0 && !pgbr_stanza_name_valid(tok))
			{
				pgbr_error_set(err, PGBR_ERR_OPTION,
							   "invalid stanza name \"%s\" in tls-server-auth value \"%s\" (%s)",
							   tok, v, pgbr_config_source(s->cfg, "tls-server-auth"));
				r->stanzas[count] = NULL;
				pgbr_free(list);
				return false;
			}
			r->stanzas[count++] = pgbr_strdup(tok);
		}
		r->stanzas[count] = NULL;
		pgbr_free(list);
	}
	return true;
}

bool
auth_check(const ServerSettings *s, SSL *ssl, const char *stanza, PgbrError *err)
{
	char		cn[256];
	char		granted[1024] = "";
	bool		named = false;

	if (SSL_get0_peer_certificate(ssl) == NULL)
	{
		pgbr_error_set(err, PGBR_ERR_ACCESS,
					   "client sent no certificate: a client certificate is required for stanza \"%s\"",
					   stanza);
		pgbr_error_hint(err, "Set repo1-host-cert-file and repo1-host-key-file on the client.");
		return false;
	}
	if (!pgbr_tls_peer_cn(ssl, cn, sizeof(cn)))
		snprintf(cn, sizeof(cn), "(none)");

	for (int i = 0; i < s->nrules; i++)
	{
		const AuthRule *r = &s->rules[i];

		if (!pgbr_tls_peer_has_name(ssl, r->name))
			continue;
		named = true;
		for (char **p = r->stanzas; *p; p++)
		{
			size_t		len = strlen(granted);

			if (strcmp(*p, "*") == 0 || strcmp(*p, stanza) == 0)
				return true;
			snprintf(granted + len, sizeof(granted) - len, "%s%s", len ? "," : "", *p);
		}
	}
	if (!named)
	{
		pgbr_error_set(err, PGBR_ERR_ACCESS,
					   "client certificate CN \"%s\" is not authorized: no tls-server-auth entry names it",
					   cn);
		pgbr_error_hint(err, "Add tls-server-auth=%s=%s to the server's configuration and reload it.",
						cn, stanza);
	}
	else
	{
		pgbr_error_set(err, PGBR_ERR_ACCESS,
					   "client certificate CN \"%s\" is not authorized for stanza \"%s\" (tls-server-auth grants it: %s)",
					   cn, stanza, granted);
		pgbr_error_hint(err, "Add the stanza to the tls-server-auth entry of \"%s\" and reload the server.",
						cn);
	}
	return false;
}
