/*
 * fuzz_frame.c
 *		libFuzzer target: a byte stream as pgbr-server receives it after the
 *		TLS layer.  Frames are split exactly as pgbr_conn_recv does (8-byte
 *		header checked by pgbr_frame_header_decode before the payload is
 *		touched) and each payload goes to the decoder of its type.  A header
 *		the decoder refuses ends the stream, as it ends the connection.
 */
#include "fuzz_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		pos = 0;

	while (size - pos >= PGBR_FRAME_HEADER_SIZE)
	{
		PgbrFrameHeader hdr;
		PgbrError	err;
		uint8_t		again[PGBR_FRAME_HEADER_SIZE];
		uint8_t    *payload;

		pgbr_error_init(&err);
		if (!pgbr_frame_header_decode(data + pos, &hdr, &err))
		{
			FUZZ_CHECK(err.code == PGBR_ERR_PROTOCOL, "header refused with code %d", err.code);
			break;
		}
		FUZZ_CHECK(hdr.type >= 1 && hdr.type <= PGBR_MSG_TYPE_MAX && hdr.flags == 0 &&
				   hdr.length <= PGBR_FRAME_MAX, "header accepted: type %u length %u",
				   hdr.type, hdr.length);
		pgbr_frame_header_encode(again, hdr.type, hdr.length);
		FUZZ_CHECK(memcmp(again, data + pos, PGBR_FRAME_HEADER_SIZE) == 0,
				   "header decode + encode is not the identity");
		pos += PGBR_FRAME_HEADER_SIZE;
		if (hdr.length > size - pos)
			break;				/* the peer would wait for the rest */

		/* an exact-size copy, so ASan sees any read past the payload */
		payload = malloc(hdr.length ? hdr.length : 1);
		memcpy(payload, data + pos, hdr.length);
		fuzz_decode_body(hdr.type, payload, hdr.length);
		free(payload);
		pos += hdr.length;
	}
	return 0;
}
