/*
 * queue.c - the queue thread: from Redis to the workers' slots.
 *
 * DESIGN (SPEC 5.1)
 *   The thread waits (on d->slots) until some connected worker has a free
 *   slot, so the backlog stays in Redis where every distributor sees it.
 *   Then one take.lua call moves up to that many items into
 *   inflight-<name>: first from queue-<function> for the functions with
 *   free slots (parked tasks are served before newer ones), then from
 *   new-task.  Only when nothing came does it block (BLMOVE, at most
 *   QUEUE_BLOCK_MS, so a stop or a new worker is seen soon).  Each item is
 *   parsed and placed in C: the worker with that function and the most
 *   free slots (ties: the lowest load), or parked when there is none, or
 *   bad-task when it cannot run at all.  Then ONE round trip claims, parks
 *   and rejects the whole batch (claim.lua, park.lua, bad.lua in a
 *   pipeline), and each worker gets all its "run" lines in one send.  That
 *   round trip also takes the next items when slots are left free (up to
 *   that many), so while the queue is busy a batch costs one round trip.
 *   A crash at any instant loses nothing: an item is in new-task,
 *   queue-<function>, inflight-<name> (returned at the next start, or by
 *   another distributor's recovery) or claimed in its record.
 *
 * Redis: the thread's own dt_store.  Locks: d->lock around placement and
 * bookkeeping only (no I/O under it); sends use each connection's own lock.
 */
#include "build-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributor.h"
#include "dtask.h"
#include "item.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define QUEUE_BATCH 256       /* at most this many items per round trip */
#define QUEUE_BLOCK_MS 500    /* BLMOVE wait when the queue is empty */
#define QUEUE_BLOCK_PARKED_MS 25 /* ... while parked tasks wait for slots */

/* One taken item on its way to a worker. */
typedef struct slot_item {
	const char *raw;   /* as taken (owned by the dt_strv) */
	size_t raw_len;
	dt_item item;
	int parsed;
	char why[160];     /* why it is bad */
	wlink *to;         /* the chosen worker, or NULL: park */
	char *fn_json;     /* the function as a JSON string */
} slot_item;

/* A growable byte buffer for one worker's "run" lines. */
typedef struct outbuf {
	wlink *l;
	char *p;
	size_t len, cap;
} outbuf;

static int buf_add(outbuf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap : 4096;
		while (ncap < b->len + n)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np)
			return DTASK_ENOMEM;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

/* s as a JSON string (quotes and escapes), malloc'd. */
static char *json_quote(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n * 6 + 3), *o = out;
	if (!out)
		return NULL;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			*o++ = '\\';
			*o++ = (char)*p;
		} else if (*p < 0x20) {
			o += sprintf(o, "\\u%04x", *p);
		} else {
			*o++ = (char)*p;
		}
	}
	*o++ = '"';
	*o = '\0';
	return out;
}

/* The link with that function and the most free slots (ties: lowest load). */
static wlink *place(dist *d, const char *function)
{
	wlink *best = NULL;
	int best_free = 0;
	for (wlink *l = d->links; l; l = l->next) {
		int f = dt_link_free(l);
		if (f <= 0 || !dt_link_has_function(l, function))
			continue;
		if (!best || f > best_free || (f == best_free && l->load < best->load)) {
			best = l;
			best_free = f;
		}
	}
	return best;
}

/* Under d->lock: every function some connected worker runs (copied). */
static char **all_functions(dist *d, size_t *nf)
{
	size_t n = 0, cap = 0;
	char **f = NULL;
	for (wlink *l = d->links; l; l = l->next)
		for (size_t i = 0; i < l->nfunctions; i++) {
			size_t k;
			for (k = 0; k < n && strcmp(f[k], l->functions[i]) != 0; k++)
				;
			if (k < n)
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				char **nv = realloc(f, ncap * sizeof *nv);
				if (!nv)
					goto out;
				f = nv;
				cap = ncap;
			}
			if (!(f[n] = strdup(l->functions[i])))
				goto out;
			n++;
		}
out:
	*nf = n;
	return f;
}

/* How long to block on new-task when nothing could be taken.  While
 * tasks are parked for functions whose workers are all busy, slots that
 * free up must be seen soon, and a blocked BLMOVE cannot see them: block
 * briefly then.  One EXISTS, on the idle path only. */
static int block_time(dist *d, dt_store *st)
{
	size_t nf = 0;
	pthread_mutex_lock(&d->lock);
	char **fns = all_functions(d, &nf);
	pthread_mutex_unlock(&d->lock);
	int64_t parked = 0;
	char err[256];
	if (nf && dt_store_parked(st, (const char *const *)fns, nf, &parked, err, sizeof err) < 0)
		parked = 0; /* the take that follows reports the error */
	for (size_t i = 0; i < nf; i++)
		free(fns[i]);
	free(fns);
	return parked > 0 ? QUEUE_BLOCK_PARKED_MS : QUEUE_BLOCK_MS;
}

/* Under d->lock: the functions with free slots and how many, and the total
 * free slots.  Returns the total. */
static size_t plan(dist *d, char ***fns, size_t **counts, size_t *nf)
{
	size_t total = 0, n = 0, cap = 0;
	char **f = NULL;
	size_t *c = NULL;
	for (wlink *l = d->links; l; l = l->next) {
		int fr = dt_link_free(l);
		if (fr <= 0)
			continue;
		total += (size_t)fr;
		for (size_t i = 0; i < l->nfunctions; i++) {
			size_t k;
			for (k = 0; k < n && strcmp(f[k], l->functions[i]) != 0; k++)
				;
			if (k == n) {
				if (n == cap) {
					size_t ncap = cap ? cap * 2 : 16;
					char **nfv = realloc(f, ncap * sizeof *nfv);
					size_t *ncv = nfv ? realloc(c, ncap * sizeof *ncv) : NULL;
					if (!nfv || !ncv) {
						free(nfv ? nfv : f);
						free(c);
						*fns = NULL;
						*counts = NULL;
						*nf = 0;
						return total;
					}
					f = nfv;
					c = ncv;
					cap = ncap;
				}
				f[n] = l->functions[i]; /* borrowed: copied below */
				c[n] = 0;
				n++;
			}
			c[k] += (size_t)fr;
		}
	}
	for (size_t i = 0; i < n; i++)
		f[i] = strdup(f[i]);
	*fns = f;
	*counts = c;
	*nf = n;
	return total;
}

static void free_plan(char **fns, size_t *counts, size_t nf)
{
	for (size_t i = 0; i < nf; i++)
		free(fns[i]);
	free(fns);
	free(counts);
}

/* Wait for the Redis link to come back after an error, or for a stop. */
static void backoff(dist *d, int ms)
{
	struct timespec ts;
	dt_deadline(&ts, ms);
	pthread_mutex_lock(&d->lock);
	if (!d->stopping)
		pthread_cond_timedwait(&d->slots, &d->lock, &ts);
	pthread_mutex_unlock(&d->lock);
}

/* Claim, park or reject a batch of taken items, then send the runs.  When
 * slots are still free after placing them, the same round trip also takes
 * the next items (*next; empty otherwise), so a busy queue costs one round
 * trip per batch, not two. */
static int dispatch(dist *d, dt_store *st, dt_batch *b, dt_strv *items, dt_strv *next)
{
	int took = 0;
	const dt_config *cfg = d->cfg;
	size_t n = items->n;
	slot_item *it = calloc(n, sizeof *it);
	dt_claim_req *cq = calloc(n, sizeof *cq);
	dt_claim_res *cr = calloc(n, sizeof *cr);
	dt_park_req *pq = calloc(n, sizeof *pq);
	dt_bad_req *bq = calloc(n, sizeof *bq);
	int *pr = calloc(n, sizeof *pr), *br = calloc(n, sizeof *br);
	outbuf *out = calloc(n, sizeof *out);
	size_t *ci = calloc(n, sizeof *ci);
	size_t nc = 0, np = 0, nb = 0, no = 0;
	char err[512];

	if (!it || !cq || !cr || !pq || !bq || !pr || !br || !out || !ci) {
		log_error("queue: out of memory for a batch of %zu: returning it", n);
		goto out;
	}
	/* Parse outside the lock. */
	for (size_t i = 0; i < n; i++) {
		it[i].raw = items->v[i];
		it[i].raw_len = items->len[i];
		if (dt_item_parse(it[i].raw, it[i].raw_len, &it[i].item, it[i].why,
				  sizeof it[i].why) == 0) {
			it[i].parsed = 1;
			it[i].fn_json = json_quote(it[i].item.function);
			/* The "run" line must fit the peer's max_message. */
			if (it[i].item.len + strlen(it[i].item.function) * 6 + 256 > cfg->max_message) {
				it[i].parsed = 0;
				snprintf(it[i].why, sizeof it[i].why,
					 "task of %zu bytes does not fit max_message (%zu)",
					 it[i].item.len, cfg->max_message);
			}
		}
	}
	/* Place. */
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < n; i++) {
		if (!it[i].parsed)
			continue;
		wlink *l = place(d, it[i].item.function);
		it[i].to = l;
		if (!l)
			continue;
		l->outstanding++;
		size_t k;
		for (k = 0; k < no && out[k].l != l; k++)
			;
		if (k == no) {
			out[no++].l = l;
			l->refs++;
		}
	}
	pthread_mutex_unlock(&d->lock);

	for (size_t i = 0; i < n; i++) {
		if (!it[i].parsed) {
			bq[nb++] = (dt_bad_req){ it[i].raw, it[i].raw_len, it[i].why };
		} else if (!it[i].to) {
			pq[np++] = (dt_park_req){ it[i].raw, it[i].raw_len, it[i].item.function };
		} else {
			ci[nc] = i;
			cq[nc++] = (dt_claim_req){ it[i].raw, it[i].raw_len, &it[i].item,
						   it[i].to->name };
		}
	}
	int rc = 0;
	if (nc)
		rc = dt_batch_claim(b, d->name, cq, nc, cr);
	if (!rc && np)
		rc = dt_batch_park(b, d->name, pq, np, pr);
	if (!rc && nb)
		rc = dt_batch_bad(b, d->name, bq, nb, br);
	if (!rc && nc) {
		/* The slots left free once these are placed: take for them now. */
		char **fns = NULL;
		size_t *counts = NULL, nf = 0, total;
		pthread_mutex_lock(&d->lock);
		total = d->stopping ? 0 : plan(d, &fns, &counts, &nf);
		pthread_mutex_unlock(&d->lock);
		if (total > QUEUE_BATCH)
			total = QUEUE_BATCH;
		if (total && nf) {
			rc = dt_batch_take_multi(b, d->name, (const char *const *)fns, counts, nf, total,
						 next);
			took = rc == 0;
		}
		free_plan(fns, counts, nf);
	}
	if (!rc)
		rc = dt_batch_exec(b, err, sizeof err);
	else
		snprintf(err, sizeof err, "out of memory");
	if (rc < 0) {
		dt_strv_free(next); /* inflight-<name> is returned below */
		took = 0;
	}

	/* Bookkeeping, and the run lines per worker. */
	pthread_mutex_lock(&d->lock);
	for (size_t c = 0; c < nc; c++) {
		slot_item *x = &it[ci[c]];
		wlink *l = x->to;
		int ok = rc == 0 && cr[c].status == DT_CLAIM_OK;
		if (!ok || !l->alive) {
			if (l->outstanding > 0)
				l->outstanding--;
			if (ok) {
				/* Claimed for a worker that is gone: back at once. */
				dt_job j = { .kind = JOB_REQUEUE, .attempt = cr[c].attempt,
					     .flags = DT_RQ_NOW };
				snprintf(j.id, sizeof j.id, "%s", x->item.id);
				snprintf(j.reason, sizeof j.reason, "worker %.60s left before the run",
					 l->name);
				dt_sweep_post(d, &j);
			}
			continue;
		}
		dt_tset_add(&l->tasks, x->item.id, cr[c].attempt);
		size_t k;
		for (k = 0; k < no && out[k].l != l; k++)
			;
		/* The id is at most 128 safe characters; the function, quoted, may
		 * be long: it is appended, never formatted into a fixed buffer. */
		char head[256];
		int hn = snprintf(head, sizeof head,
				  "{\"type\":\"run\",\"id\":\"%s\",\"attempt\":%lld,\"function\":",
				  x->item.id, (long long)cr[c].attempt);
		const char *fq = x->fn_json ? x->fn_json : "\"\"";
		if (hn < 0 || (size_t)hn >= sizeof head || buf_add(&out[k], head, (size_t)hn) ||
		    buf_add(&out[k], fq, strlen(fq)) || buf_add(&out[k], ",\"task\":", 8) ||
		    buf_add(&out[k], x->item.json, x->item.len) || buf_add(&out[k], "}\n", 2))
			log_error("queue: cannot build the run for %s", x->item.id);
	}
	pthread_mutex_unlock(&d->lock);

	if (rc < 0) {
		log_error("queue: Redis: %s: the batch stays in inflight-%s and is returned", err,
			  d->name);
	} else {
		for (size_t c = 0; c < nc; c++) {
			if (cr[c].status == DT_CLAIM_DUP)
				log_warn("task %s: a duplicate item: moved to bad-task",
					 it[ci[c]].item.id);
			else if (cr[c].status == DT_CLAIM_CANCELLED)
				log_info("task %s: cancelled before it ran", it[ci[c]].item.id);
		}
		for (size_t i = 0; i < nb; i++)
			log_warn("bad queue item moved to bad-task: %s", bq[i].reason);
		if (np) {
			/* At most one line a second: a saturated function parks a lot. */
			static size_t parked;   /* queue thread only */
			static int64_t last_log = -1000000;
			parked += np;
			if (dt_mono_ms() - last_log >= 1000) {
				log_info("parked %zu task(s): no connected worker with their function has a free slot",
					 parked);
				parked = 0;
				last_log = dt_mono_ms();
			}
		}
	}

	/* One send per worker, outside every lock but the connection's own. */
	for (size_t k = 0; k < no; k++) {
		if (out[k].len && dt_conn_send_raw(out[k].l->conn, out[k].p, out[k].len) < 0)
			log_warn("worker %s: sending runs failed: it will be taken for lost",
				 out[k].l->name);
	}
	pthread_mutex_lock(&d->lock);
	for (size_t k = 0; k < no; k++)
		dt_link_unref(d, out[k].l);
	pthread_mutex_unlock(&d->lock);

	if (rc < 0) {
		/* What was not applied is still in inflight-<name>: put it back. */
		int64_t cnt;
		while (dt_store_return_inflight(st, d->name, &cnt, err, sizeof err) < 0) {
			pthread_mutex_lock(&d->lock);
			int stop = d->stopping;
			pthread_mutex_unlock(&d->lock);
			if (stop)
				break;
			backoff(d, 1000);
		}
	}
out:
	for (size_t i = 0; it && i < n; i++) {
		if (it[i].parsed || it[i].item.json)
			dt_item_free(&it[i].item);
		free(it[i].fn_json);
	}
	for (size_t k = 0; out && k < no; k++)
		free(out[k].p);
	free(it);
	free(cq);
	free(cr);
	free(pq);
	free(bq);
	free(pr);
	free(br);
	free(out);
	free(ci);
	return took;
}

void *dt_queue_main(void *arg)
{
	dist *d = arg;
	dt_store *st = NULL;
	dt_batch *b = NULL;
	char err[512];
	int down = 0;

	if (dt_store_new(&d->cfg->redis, &st, err, sizeof err) < 0 || !(b = dt_batch_new(st))) {
		log_error("queue: %s", err);
		dt_store_free(st);
		return NULL;
	}
	/* First return whatever an earlier run of this distributor left. */
	for (;;) {
		int64_t cnt = 0;
		if (dt_store_return_inflight(st, d->name, &cnt, err, sizeof err) == 0) {
			if (cnt > 0)
				log_notice("returned %lld item(s) left in inflight-%s to new-task",
					   (long long)cnt, d->name);
			break;
		}
		if (!down++)
			log_error("queue: Redis: %s (retrying)", err);
		backoff(d, 1000);
		pthread_mutex_lock(&d->lock);
		int stop = d->stopping;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			goto done;
	}
	down = 0;

	dt_strv next = { 0 };
	int took = 0; /* the last dispatch also took, and found nothing */
	for (;;) {
		if (next.n) {
			/* Taken with the last claims: dispatch them now.  A stop
			 * leaves them in inflight-<name>, returned at the next
			 * start (or by another distributor's recovery). */
			dt_strv items = next;
			memset(&next, 0, sizeof next);
			pthread_mutex_lock(&d->lock);
			int stop = d->stopping;
			pthread_mutex_unlock(&d->lock);
			if (!stop)
				took = dispatch(d, st, b, &items, &next);
			dt_strv_free(&items);
			if (stop)
				break;
			continue;
		}
		dt_strv_free(&next);
		char **fns = NULL;
		size_t *counts = NULL, nf = 0, total = 0;
		pthread_mutex_lock(&d->lock);
		while (!d->stopping) {
			total = plan(d, &fns, &counts, &nf);
			if (total > 0)
				break;
			free_plan(fns, counts, nf);
			fns = NULL;
			counts = NULL;
			nf = 0;
			struct timespec ts;
			dt_deadline(&ts, 1000);
			pthread_cond_timedwait(&d->slots, &d->lock, &ts);
		}
		int stop = d->stopping;
		pthread_mutex_unlock(&d->lock);
		if (stop) {
			free_plan(fns, counts, nf);
			break;
		}
		if (total > QUEUE_BATCH)
			total = QUEUE_BATCH;

		dt_strv items = { 0 };
		int rc = 0;
		if (!took) /* else the queues were just found empty: block */
			rc = dt_store_take_multi(st, d->name, (const char *const *)fns, counts, nf,
						 total, &items, err, sizeof err);
		took = 0;
		free_plan(fns, counts, nf);
		if (rc == 0 && items.n == 0)
			rc = dt_store_take_blocking(st, d->name, block_time(d, st), &items, err,
						    sizeof err);
		if (rc < 0) {
			if (!down++)
				log_error("queue: Redis: %s (retrying every second)", err);
			backoff(d, 1000);
			continue;
		}
		if (down) {
			log_notice("queue: Redis is back");
			down = 0;
		}
		if (items.n)
			took = dispatch(d, st, b, &items, &next);
		dt_strv_free(&items);
	}
	dt_strv_free(&next);
done:
	dt_batch_free(b);
	dt_store_free(st);
	return NULL;
}
