/*
 * storage_s3.c
 *		Placeholder until the S3 back end lands: repo1-type=s3 is refused.
 */
#include "storage.h"

static bool
s3_open(Storage *st, const PgbrConfig *cfg, PgbrError *err)
{
	return pgbr_error_set(err, PGBR_ERR_OPTION, "repo1-type=s3 is not available in this build");
}

const StorageDriver storage_s3_driver = {
	.type = "s3",
	.open = s3_open,
};
