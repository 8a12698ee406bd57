/* test_frame - the bounded line buffer behind NDJSON framing (frame.c). */
#include "build-config.h"

#include <string.h>

#include "dtask.h"
#include "frame.h"
#include "tap.h"

/* Feed text into f in chunks of at most step bytes, as a socket would. */
static int feed(dt_frame *f, const char *text, size_t step)
{
	size_t n = strlen(text);
	while (n > 0) {
		char *p;
		size_t room;
		int rc = dt_frame_space(f, &p, &room);
		if (rc < 0)
			return rc;
		size_t k = n < step ? n : step;
		if (k > room)
			k = room;
		memcpy(p, text, k);
		dt_frame_commit(f, k);
		text += k;
		n -= k;
	}
	return 0;
}

int main(void)
{
	dt_frame f;
	char *line;
	size_t len;
	tap_plan(26);

	dt_frame_init(&f, 64);
	is_int(dt_frame_next(&f, &line, &len), 0, "empty buffer: no line yet");
	feed(&f, "{\"type\":\"a\"}\n{\"type\":", 1000);
	is_int(dt_frame_next(&f, &line, &len), 1, "first line is complete");
	is_str(line, "{\"type\":\"a\"}", "first line without its newline");
	is_int(len, 12, "its length");
	is_int(dt_frame_next(&f, &line, &len), 0, "partial second line waits");
	feed(&f, "\"b\"}\r\n\n\n{\"type\":\"c\"}\n", 3);
	is_int(dt_frame_next(&f, &line, &len), 1, "second line completes across reads");
	is_str(line, "{\"type\":\"b\"}", "CR before LF is stripped");
	is_int(dt_frame_next(&f, &line, &len), 1, "empty lines are skipped");
	is_str(line, "{\"type\":\"c\"}", "third line");
	is_int(dt_frame_next(&f, &line, &len), 0, "nothing left");
	dt_frame_free(&f);

	/* Exactly max bytes is fine; one more is not. */
	char exact[65], over[66], buf[200];
	memset(exact, 'x', 64);
	exact[64] = '\0';
	memset(over, 'y', 65);
	over[65] = '\0';
	dt_frame_init(&f, 64);
	snprintf(buf, sizeof buf, "%s\n", exact);
	is_int(feed(&f, buf, 7), 0, "a line of max_message bytes fits");
	is_int(dt_frame_next(&f, &line, &len), 1, "and is returned");
	is_int(len, 64, "with its full length");
	snprintf(buf, sizeof buf, "%s\r\n", exact);
	feed(&f, buf, 100);
	is_int(dt_frame_next(&f, &line, &len), 1, "max_message bytes plus CRLF fits");
	is_int(len, 64, "CR not counted");
	dt_frame_free(&f);

	dt_frame_init(&f, 64);
	int rc = feed(&f, over, 65);
	ok(rc == 0 || rc == DTASK_ETOOBIG, "feeding an oversized line");
	is_int(dt_frame_next(&f, &line, &len), DTASK_ETOOBIG,
	       "a line over max_message is refused before its newline arrives");
	dt_frame_free(&f);

	dt_frame_init(&f, 64);
	snprintf(buf, sizeof buf, "%s\n", over);
	feed(&f, buf, 200);
	is_int(dt_frame_next(&f, &line, &len), DTASK_ETOOBIG,
	       "a complete line over max_message is refused");
	dt_frame_free(&f);

	/* Many lines arriving in one read, and a long stream in tiny reads. */
	dt_frame_init(&f, 1 << 20);
	char many[4096] = "";
	for (int i = 0; i < 100; i++) {
		char one[40];
		snprintf(one, sizeof one, "{\"n\":%d}\n", i);
		strcat(many, one);
	}
	feed(&f, many, 4096);
	int count = 0, inorder = 1;
	while (dt_frame_next(&f, &line, &len) == 1) {
		char want[40];
		snprintf(want, sizeof want, "{\"n\":%d}", count);
		if (strcmp(line, want) != 0)
			inorder = 0;
		count++;
	}
	is_int(count, 100, "100 lines from one read");
	ok(inorder, "in order");
	dt_frame_free(&f);

	dt_frame_init(&f, 1 << 20);
	count = 0;
	for (int round = 0; round < 3; round++) {
		feed(&f, many, 1);
		while (dt_frame_next(&f, &line, &len) == 1)
			count++;
	}
	is_int(count, 300, "300 lines fed a byte at a time");
	dt_frame_free(&f);

	/* A large line grows the buffer and comes back whole. */
	dt_frame_init(&f, 1 << 20);
	size_t big = 300000;
	char *text = malloc(big + 2);
	memset(text, 'z', big);
	text[big] = '\n';
	text[big + 1] = '\0';
	is_int(feed(&f, text, 16384), 0, "a 300 kB line is buffered");
	is_int(dt_frame_next(&f, &line, &len), 1, "and returned");
	is_int(len, big, "whole");
	free(text);
	dt_frame_free(&f);

	/* The buffer never grows past max + 3 bytes. */
	dt_frame_init(&f, 100);
	char *p;
	size_t room;
	size_t total = 0;
	while (dt_frame_space(&f, &p, &room) == 0 && total < 1000) {
		memset(p, 'q', room);
		dt_frame_commit(&f, room);
		total += room;
	}
	ok(total <= 103, "buffer capped at max_message + 3 (took %zu bytes)", total);
	is_int(dt_frame_next(&f, &line, &len), DTASK_ETOOBIG, "and then reports the overflow");
	dt_frame_free(&f);

	return tap_done(26);
}
