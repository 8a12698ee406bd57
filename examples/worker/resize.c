/*
 * resize.c - an embedded distributed-task worker: a program of your own
 * with its task functions compiled in, built against the installed
 * library (see the Makefile next to this file):
 *
 *   make
 *   ./resize -f -c /etc/dtask/dtask.json
 *   dtask submit resize '{"width": 4, "height": 2, "to": [2, 1],
 *                         "pixels": [0, 10, 20, 30, 40, 50, 60, 70]}'
 *   dtask submit wordcount '{"text": "the quick brown fox"}' --wait
 *
 * Functions:
 *   resize     data {"width": W, "height": H, "pixels": [W*H gray values],
 *              "to": [w, h]}: scales a grayscale image (box filter when
 *              shrinking, nearest pixel when growing); result
 *              {"width": w, "height": h, "pixels": [...]}
 *   wordcount  data {"text": "..."}: counts the words (runs of non-space);
 *              result {"words": N, "lines": N, "bytes": N}
 *   noop       does nothing; result null
 *
 * What a task function does (dtask.h): reads its data, calls
 * dtask_checkpoint() often (it returns non-zero when the task must stop:
 * clean up and return DTASK_STOP; it blocks while the task is paused),
 * sends progress to watchers with dtask_emit(), and ends with
 * dtask_set_result() + DTASK_END, or dtask_set_error() + DTASK_FAIL.
 * Task functions run on the worker's threads, several at once: keep their
 * state in locals.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dtask.h>
#include <json-c/json.h>

/* ---------------------------------------------------------------- wordcount */

static dtask_status wordcount(dtask *t, void *arg)
{
	struct json_object *data = dtask_data_json(t), *text;
	const char *s;
	size_t len, words = 0, lines = 0;
	int in_word = 0;
	char buf[128];

	(void)arg;
	if (!data || !json_object_object_get_ex(data, "text", &text) ||
	    !json_object_is_type(text, json_type_string)) {
		dtask_set_error(t, "wordcount wants data {\"text\": \"...\"}");
		return DTASK_FAIL;
	}
	s = json_object_get_string(text);
	len = (size_t)json_object_get_string_len(text);

	for (size_t i = 0; i < len; i++) {
		/* A checkpoint and a progress event every 64 KiB: cheap enough,
		 * and often enough for a stop to take effect at once. */
		if (i % 65536 == 0 && i > 0) {
			if (dtask_checkpoint(t))
				return DTASK_STOP;
			snprintf(buf, sizeof buf, "{\"done\": %zu, \"of\": %zu}", i, len);
			dtask_emit(t, "progress", buf);
		}
		if (s[i] == '\n')
			lines++;
		if (isspace((unsigned char)s[i])) {
			in_word = 0;
		} else if (!in_word) {
			in_word = 1;
			words++;
		}
	}
	if (len > 0 && s[len - 1] != '\n')
		lines++;
	snprintf(buf, sizeof buf, "{\"words\": %zu, \"lines\": %zu, \"bytes\": %zu}", words,
		 lines, len);
	dtask_set_result(t, buf);
	return DTASK_END;
}

/* ---------------------------------------------------------------- resize */

static int get_dim(struct json_object *o, const char *key, int *out)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	int64_t n = json_object_get_int64(v);
	if (n < 1 || n > 16384)
		return -1;
	*out = (int)n;
	return 0;
}

static dtask_status resize(dtask *t, void *arg)
{
	struct json_object *data = dtask_data_json(t), *pixels, *to, *res, *out;
	int w, h, tw, th;
	unsigned char *src;
	char buf[128];

	(void)arg;
	if (!data || get_dim(data, "width", &w) || get_dim(data, "height", &h) ||
	    !json_object_object_get_ex(data, "pixels", &pixels) ||
	    !json_object_is_type(pixels, json_type_array) ||
	    json_object_array_length(pixels) != (size_t)w * (size_t)h ||
	    !json_object_object_get_ex(data, "to", &to) || !json_object_is_type(to, json_type_array) ||
	    json_object_array_length(to) != 2) {
		dtask_set_error(t, "resize wants data {\"width\": W, \"height\": H, "
			        "\"pixels\": [W*H values 0..255], \"to\": [w, h]} (sizes 1..16384)");
		return DTASK_FAIL;
	}
	tw = json_object_get_int(json_object_array_get_idx(to, 0));
	th = json_object_get_int(json_object_array_get_idx(to, 1));
	if (tw < 1 || th < 1 || tw > 16384 || th > 16384) {
		dtask_set_error(t, "resize: \"to\" must be [w, h], each from 1 to 16384");
		return DTASK_FAIL;
	}

	src = malloc((size_t)w * (size_t)h);
	if (!src) {
		dtask_set_error(t, "resize: out of memory");
		return DTASK_FAIL;
	}
	for (size_t i = 0; i < (size_t)w * (size_t)h; i++) {
		int v = json_object_get_int(json_object_array_get_idx(pixels, i));
		src[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
	}

	out = json_object_new_array_ext(tw * th);
	for (int y = 0; y < th; y++) {
		/* Once per output row: stop when asked, report progress. */
		if (dtask_checkpoint(t)) {
			json_object_put(out);
			free(src);
			return DTASK_STOP;
		}
		if (y % 64 == 0) {
			snprintf(buf, sizeof buf, "{\"row\": %d, \"of\": %d}", y, th);
			dtask_emit(t, "progress", buf);
		}
		/* The source rows and columns this output pixel covers. */
		int y0 = (int)((long)y * h / th), y1 = (int)((long)(y + 1) * h / th);
		if (y1 <= y0)
			y1 = y0 + 1;
		for (int x = 0; x < tw; x++) {
			int x0 = (int)((long)x * w / tw), x1 = (int)((long)(x + 1) * w / tw);
			if (x1 <= x0)
				x1 = x0 + 1;
			long sum = 0;
			for (int sy = y0; sy < y1; sy++)
				for (int sx = x0; sx < x1; sx++)
					sum += src[(size_t)sy * (size_t)w + (size_t)sx];
			long n = (long)(y1 - y0) * (x1 - x0);
			json_object_array_add(out, json_object_new_int((int)((sum + n / 2) / n)));
		}
	}
	free(src);

	res = json_object_new_object();
	json_object_object_add(res, "width", json_object_new_int(tw));
	json_object_object_add(res, "height", json_object_new_int(th));
	json_object_object_add(res, "pixels", out);
	dtask_set_result(t, json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN));
	json_object_put(res);
	return DTASK_END;
}

/* ---------------------------------------------------------------- noop */

static dtask_status noop(dtask *t, void *arg)
{
	(void)t;
	(void)arg;
	return DTASK_END;
}

/* ---------------------------------------------------------------- main */

/* Called once the configuration is loaded, before the worker starts:
 * register the functions (non-zero gives up). */
static int setup(dtask_worker *w)
{
	if (dtask_worker_add(w, "resize", resize, NULL) != 0 ||
	    dtask_worker_add(w, "wordcount", wordcount, NULL) != 0 ||
	    dtask_worker_add(w, "noop", noop, NULL) != 0) {
		fprintf(stderr, "resize: cannot register the functions\n");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	/* -c FILE, -f, -p PIDFILE, -h, -V; daemonizes; SIGTERM stops it. */
	return dtask_worker_main(argc, argv, setup);
}
