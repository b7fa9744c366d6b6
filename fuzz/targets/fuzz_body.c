/*
 * fuzz_body.c
 *		libFuzzer target: one message body.  The first input byte picks the
 *		message type (modulo the number of types), the rest is the payload,
 *		decoded as its receiver decodes it (see fuzz_decode_body).  Every
 *		accepted body must re-encode to the same bytes, and every name it
 *		carries must pass the path/WAL-name/label properties.
 */
#include "fuzz_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t		type;
	uint8_t    *payload;

	if (size < 1)
		return 0;
	type = (uint8_t) (data[0] % PGBR_MSG_TYPE_MAX + 1);
	payload = malloc(size - 1 ? size - 1 : 1);
	memcpy(payload, data + 1, size - 1);
	fuzz_decode_body(type, payload, size - 1);
	free(payload);
	return 0;
}
