/*
 * item.h - one queue item (a task as pushed on new-task, SPEC section 2),
 * checked in C before any script sees it, and task ids.
 *
 * The item text is never re-encoded: dt_item_parse() keeps the bytes as
 * submitted and only splices an "id" member in when the item had none.
 * Pure functions plus gnutls_rnd(); safe from any thread.
 */
#ifndef DT_ITEM_H
#define DT_ITEM_H

#include <stddef.h>
#include <stdint.h>

#define DT_ID_MAX 128            /* ids are 1..128 chars of [A-Za-z0-9_.:-] */
#define DT_UUID_LEN 36           /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
#define DT_MAX_ATTEMPTS_DEFAULT 5

typedef struct dt_item {
	/* The text to store and send: the item exactly as submitted, or, when
	 * it had no "id", the same text with "id":"<uuid>", spliced in right
	 * after its opening '{'.  malloc'd, NUL-terminated. */
	char *json;
	size_t len;
	char id[DT_ID_MAX + 1];
	int id_generated;        /* 1: id is a fresh UUIDv4 spliced into json */
	char *function;          /* malloc'd, non-empty, no NUL bytes */
	int64_t attempt;         /* "attempt" of a requeued item; 0 when absent */
	int clean_end;           /* default 1 */
	int state_optional;      /* default 0 */
	int64_t max_attempts;    /* default 5; 0 = no limit */
} dt_item;

/*
 * Check one item (len bytes, need not be NUL-terminated) and fill *out.
 * Rules: valid UTF-8 JSON (RFC 8259, nothing but white space after it, no
 * NUL byte) whose value is an object; "function" a non-empty string; "id"
 * absent or a string of 1..128 chars of [A-Za-z0-9_.:-]; "data" anything;
 * "attempt" absent or an integer >= 0; "clean_end" and "state_optional"
 * absent or booleans; "max_attempts" absent or an integer >= 0.  Numbers
 * above 2^31-1 are refused.  When a member occurs twice the last one counts
 * (as json-c, and so the worker, reads it).
 * Returns 0; DTASK_EINVAL with a one-line reason in why (the item is bad:
 * it belongs in bad-task); DTASK_ENOMEM; DTASK_EIO if no random bytes
 * could be had for a UUID.  On failure *out holds nothing to free.
 */
int dt_item_parse(const char *json, size_t len, dt_item *out, char *why, size_t whylen);
/* The same for an item json-c has parsed already (o, with the strict and
 * UTF-8 flags; json, len: its exact text, starting with '{'), e.g. the
 * "task" of a "run" line the worker has read: the same rules and results,
 * without reading the text a second time. */
struct json_object;
int dt_item_from_object(struct json_object *o, const char *json, size_t len, dt_item *out,
			char *why, size_t whylen);
/*
 * The reading without json-c, which dt_item_parse() tries first: for an
 * item whose text is simple (dt_json_simple()), valid JSON (checked here
 * unless known_valid) and a valid item, json-c would read exactly what
 * the member scanner reads.  1: *out is filled as dt_item_parse() fills
 * it; 0: anything else, *out holds nothing (dt_item_parse() decides, with
 * its reasons); DTASK_ENOMEM or DTASK_EIO (nothing in *out).
 */
int dt_item_simple(const char *json, size_t len, int known_valid, dt_item *out);
void dt_item_free(dt_item *it);

/* A random (version 4) UUID, lower-case, into out (37 bytes with the NUL).
 * 0 or DTASK_EIO. */
int dt_uuid4(char out[DT_UUID_LEN + 1]);

/* 1 when id (len bytes) is a valid task id. */
int dt_id_valid(const char *id, size_t len);

#endif
