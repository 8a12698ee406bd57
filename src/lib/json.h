/*
 * json.h - a strict RFC 8259 syntax check.
 *
 * json-c's strict mode still accepts single-quoted names and NaN/Infinity,
 * which are not JSON: every other program that reads our queue or records
 * would refuse them.  This checker runs before json-c on what comes from
 * outside (queue items, task results, the configuration file).  No state,
 * no allocation; nesting is limited to DT_JSON_MAX_DEPTH.
 */
#ifndef DT_JSON_H
#define DT_JSON_H

#include <stddef.h>

#define DT_JSON_MAX_DEPTH 512

/* 0 when s (len bytes) is exactly one JSON value, with white space around
 * it allowed; otherwise -1 and a reason (with the byte offset) in why. */
int dt_json_valid(const char *s, size_t len, char *why, size_t whylen);

#endif
