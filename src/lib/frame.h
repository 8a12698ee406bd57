/*
 * frame.h - newline-delimited JSON framing: a bounded line buffer.
 *
 * Pure buffer logic, no I/O, so it is unit-tested on its own.  The reader
 * owns one buffer of at most max_message + 1 bytes; a line (without its
 * '\n', and without a '\r' before it) longer than max_message is an error.
 * Empty lines are skipped.  Used by one reading thread per connection.
 */
#ifndef DT_FRAME_H
#define DT_FRAME_H

#include <stddef.h>

typedef struct dt_frame {
	char *buf;
	size_t cap;   /* allocated bytes */
	size_t start; /* first unconsumed byte */
	size_t len;   /* end of buffered data */
	size_t scan;  /* bytes from start already searched for '\n' */
	size_t max;   /* max_message */
} dt_frame;

void dt_frame_init(dt_frame *f, size_t max_message);
void dt_frame_free(dt_frame *f);

/* Next complete line: returns 1 and sets *line (NUL-terminated, valid until
 * the next call on f) and *len; 0 when more bytes are needed; DTASK_ETOOBIG
 * when the line being received is already longer than max_message. */
int dt_frame_next(dt_frame *f, char **line, size_t *len);

/* Where to read more bytes into, and how many fit (at least 1 unless the
 * buffer is full, which dt_frame_next reports as DTASK_ETOOBIG first).
 * DTASK_ENOMEM if the buffer could not grow. */
int dt_frame_space(dt_frame *f, char **p, size_t *avail);
/* n bytes were read into the space returned by dt_frame_space(). */
void dt_frame_commit(dt_frame *f, size_t n);

#endif
