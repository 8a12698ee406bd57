/*
 * frame.c - the bounded line buffer behind newline-delimited JSON framing
 * (see frame.h).  Owned by the one thread that reads a connection.
 */
#include "build-config.h"

#include <stdlib.h>
#include <string.h>

#include "dtask.h"
#include "frame.h"

#define FRAME_INITIAL 4096

void dt_frame_init(dt_frame *f, size_t max_message)
{
	memset(f, 0, sizeof *f);
	f->max = max_message;
}

void dt_frame_free(dt_frame *f)
{
	free(f->buf);
	memset(f, 0, sizeof *f);
}

int dt_frame_next(dt_frame *f, char **line, size_t *len)
{
	for (;;) {
		char *s = f->buf + f->start;
		size_t avail = f->len - f->start;
		char *nl = avail > f->scan ? memchr(s + f->scan, '\n', avail - f->scan) : NULL;
		if (!nl) {
			f->scan = avail;
			/* A line of max bytes may still be followed by '\r\n'. */
			if (avail > f->max + 1 || (avail == f->max + 1 && s[avail - 1] != '\r'))
				return DTASK_ETOOBIG;
			return 0;
		}
		size_t n = (size_t)(nl - s);
		f->start += n + 1;
		f->scan = 0;
		if (n > 0 && s[n - 1] == '\r')
			n--;
		if (n > f->max)
			return DTASK_ETOOBIG;
		if (n == 0)
			continue; /* empty lines are allowed and skipped */
		s[n] = '\0';
		*line = s;
		*len = n;
		return 1;
	}
}

int dt_frame_space(dt_frame *f, char **p, size_t *avail)
{
	/* Move the partial line to the front before growing. */
	if (f->start > 0) {
		size_t rest = f->len - f->start;
		memmove(f->buf, f->buf + f->start, rest);
		f->len = rest;
		f->start = 0;
	}
	/* Room for max bytes, "\r\n", and the NUL that replaces '\n'. */
	size_t limit = f->max + 3;
	if (f->len == f->cap && f->cap < limit) {
		size_t ncap = f->cap ? f->cap * 2 : FRAME_INITIAL;
		if (ncap > limit)
			ncap = limit;
		char *nb = realloc(f->buf, ncap);
		if (!nb)
			return DTASK_ENOMEM;
		f->buf = nb;
		f->cap = ncap;
	}
	if (f->len >= f->cap)
		return DTASK_ETOOBIG;
	*p = f->buf + f->len;
	*avail = f->cap - f->len;
	return 0;
}

void dt_frame_commit(dt_frame *f, size_t n)
{
	f->len += n;
}
