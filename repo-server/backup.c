/*
 * backup.c
 *		Backup requests: begin, file upload, commit, abort, info, manifest
 *		and file download, retention.
 */
#include "server.h"
#include "repo.h"

bool
backup_dispatch(Session *sess, const PgbrFrameHeader *hdr)
{
	PgbrError	err;

	pgbr_error_init(&err);
	pgbr_error_set(&err, PGBR_ERR_PROTOCOL, "unexpected %s request", pgbr_msg_name(hdr->type));
	session_refuse(sess, &err);
	return false;
}
