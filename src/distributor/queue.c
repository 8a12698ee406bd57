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
 *   QUEUE_BLOCK_MS, so a stop or a new worker is seen soon), with
 *   arrive.lua pipelined behind the BLMOVE: Redis runs it as the BLMOVE
 *   returns, and it claims the item it took, for the worker chosen here
 *   beforehand for its function, when it can check the item as strictly as
 *   the C code does (see arrive.lua); so a task submitted to an idle
 *   cluster waits for no claim round trip.  Such an item is checked again
 *   here (arrival()) and its run sent; any other is dispatched as follows.
 *   Each item is parsed and placed in C: the worker with that function and
 *   the most free slots (ties: the lowest load), or parked when there is
 *   none, or bad-task when it cannot run at all.  Then ONE round trip claims, parks
 *   and rejects the whole batch (claim.lua, park.lua, bad.lua in a
 *   pipeline), and each worker gets all its "run" lines in one send.  That
 *   round trip also takes the next items when slots are left free (up to
 *   that many), and, last, reads (LRANGE, takes nothing) the oldest items
 *   of new-task, about twice as many as it claims (at least 8, at most all
 *   the slots): the peek.  The next round trip claims the peeked items
 *   that fit the slots free by then straight off new-task's tail
 *   (claim.lua "tail": only an item that is still the oldest, and only
 *   when its function has no parked items), so a slot that frees up waits
 *   for one round trip, not for a take and then a claim.  A peeked item
 *   gone meanwhile (another distributor took it, a requeue came in front)
 *   is answered "gone" and its slot is filled in the next round trip, from
 *   that one's fresh peek; when parked items wait for a peeked item's
 *   function ("parked"), the next batch is taken the plain way, which
 *   serves them first.  A crash at any instant loses nothing: an item is
 *   in new-task, queue-<function>, inflight-<name> (returned at the next
 *   start, or by another distributor's recovery) or claimed in its record.
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

/* The link with that function and the most free slots (ties: lowest load;
 * a full tie: the worker named prefer, when not NULL, else the first). */
static wlink *place(dist *d, const char *function, const char *prefer)
{
	wlink *best = NULL;
	int best_free = 0;
	for (wlink *l = d->links; l; l = l->next) {
		int f = dt_link_free(l);
		if (f <= 0 || !dt_link_has_function(l, function))
			continue;
		if (!best || f > best_free ||
		    (f == best_free && (l->load < best->load ||
					(!(l->load > best->load) && prefer &&
					 strcmp(l->name, prefer) == 0)))) {
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

/* What the queue thread did, logged when it stops. */
typedef struct qstats {
	unsigned long long trips;       /* dispatch round trips */
	unsigned long long taken;       /* taken items claimed (any answer but gone) */
	unsigned long long tail;        /* peeked items claimed straight off new-task */
	unsigned long long tail_gone;   /* peeked items another distributor took */
	unsigned long long tail_parked; /* peeked items left for parked ones */
	unsigned long long arrived;     /* claimed as they arrived (arrive.lua) */
	unsigned long long undone;      /* ... and refused here after all */
	unsigned long long moved;       /* ... and given to another worker than planned */
} qstats;

static void count_claim(qstats *qs, int tail, int status)
{
	if (!tail)
		qs->taken += status != DT_CLAIM_GONE;
	else if (status == DT_CLAIM_GONE)
		qs->tail_gone++;
	else if (status == DT_CLAIM_PARKED)
		qs->tail_parked++;
	else
		qs->tail++;
}

/* Parse one item (raw stays the caller's) for placement. */
static void item_parse(const dt_config *cfg, slot_item *x, const char *raw, size_t len)
{
	x->raw = raw;
	x->raw_len = len;
	if (dt_item_parse(raw, len, &x->item, x->why, sizeof x->why) == 0) {
		x->parsed = 1;
		x->fn_json = json_quote(x->item.function);
		/* The "run" line must fit the peer's max_message. */
		if (x->item.len + strlen(x->item.function) * 6 + 256 > cfg->max_message) {
			x->parsed = 0;
			snprintf(x->why, sizeof x->why,
				 "task of %zu bytes does not fit max_message (%zu)", x->item.len,
				 cfg->max_message);
		}
	}
}

static void item_clear(slot_item *x)
{
	if (x->parsed || x->item.json)
		dt_item_free(&x->item);
	free(x->fn_json);
	memset(x, 0, sizeof *x);
}

/* A claimed task that gets no run (its worker left, or no worker has a
 * free slot for it any more): back at once, the sweep thread requeues it
 * with no failure counted.  why: for the log. */
static void requeue_now(dist *d, const char *id, int64_t attempt, const char *why)
{
	dt_job j = { .kind = JOB_REQUEUE, .attempt = attempt, .flags = DT_RQ_NOW };
	snprintf(j.id, sizeof j.id, "%s", id);
	snprintf(j.reason, sizeof j.reason, "%.90s", why);
	dt_sweep_post(d, &j);
}

/* Worker name left before the run: why, for requeue_now(). */
static const char *left_before(char *buf, size_t n, const char *worker)
{
	snprintf(buf, n, "worker %.60s left before the run", worker);
	return buf;
}

/* After a failed round trip: put back what is still in inflight-<name>,
 * retrying every second until it works or the distributor stops. */
static void return_inflight(dist *d, dt_store *st)
{
	char err[512];
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

/* One "run" line for x, claimed with attempt, appended to b. */
static void add_run(outbuf *b, const slot_item *x, int64_t attempt)
{
	/* The id is at most 128 safe characters; the function, quoted, may be
	 * long: it is appended, never formatted into a fixed buffer. */
	char head[256];
	int hn = snprintf(head, sizeof head,
			  "{\"type\":\"run\",\"id\":\"%s\",\"attempt\":%lld,\"function\":",
			  x->item.id, (long long)attempt);
	const char *fq = x->fn_json ? x->fn_json : "\"\"";
	if (hn < 0 || (size_t)hn >= sizeof head || buf_add(b, head, (size_t)hn) ||
	    buf_add(b, fq, strlen(fq)) || buf_add(b, ",\"task\":", 8) ||
	    buf_add(b, x->item.json, x->item.len) || buf_add(b, "}\n", 2))
		log_error("queue: cannot build the run for %s", x->item.id);
}

/* new-task's oldest items as the last round trip read them (oldest first),
 * each parsed once.  The next round trip claims those that fit the slots
 * free by then straight from the queue's tail (claim.lua "tail"), so a
 * slot that frees up waits for one round trip, not for a take and then a
 * claim.  Nothing is taken by reading: an item another distributor took
 * meanwhile is answered "gone" and its slot waits for the next round
 * trip's peek; one left for parked items sends the queue thread the plain
 * way (take.lua, then claim) for the next batch. */
typedef struct peek {
	dt_strv raw;
	slot_item *it;    /* raw.n of them; it[i].raw is raw.v[i] */
	size_t used;      /* it[0..used) were offered to a claim already */
} peek;

static void peek_clear(peek *pk)
{
	for (size_t i = 0; pk->it && i < pk->raw.n; i++)
		item_clear(&pk->it[i]);
	free(pk->it);
	dt_strv_free(&pk->raw);
	memset(pk, 0, sizeof *pk);
}

/* The peek becomes fresh (taken over).  An item still in it from before
 * and not offered yet keeps its parse (and so its generated id, if any):
 * the same bytes, matched one to one in order. */
static void peek_set(const dt_config *cfg, peek *pk, dt_strv *fresh)
{
	slot_item *nit = fresh->n ? calloc(fresh->n, sizeof *nit) : NULL;
	if (fresh->n && !nit) {
		log_error("queue: out of memory for a look at the queue");
		dt_strv_free(fresh);
		peek_clear(pk);
		return;
	}
	for (size_t i = 0; i < fresh->n; i++) {
		size_t j;
		for (j = pk->used; j < pk->raw.n; j++)
			if (pk->it[j].raw && pk->raw.len[j] == fresh->len[i] &&
			    memcmp(pk->raw.v[j], fresh->v[i], fresh->len[i]) == 0)
				break;
		if (j < pk->raw.n) {
			nit[i] = pk->it[j];
			memset(&pk->it[j], 0, sizeof pk->it[j]); /* moved: raw NULL */
			nit[i].raw = fresh->v[i];
			nit[i].to = NULL;
		} else {
			item_parse(cfg, &nit[i], fresh->v[i], fresh->len[i]);
		}
	}
	peek_clear(pk);
	pk->raw = *fresh;
	memset(fresh, 0, sizeof *fresh);
	pk->it = nit;
}

/* Under d->lock: how many items the next round trip could claim at most
 * (the slots of the workers that may take runs), for the peek. */
static size_t slots_all(dist *d)
{
	size_t n = 0;
	for (wlink *l = d->links; l; l = l->next)
		if (l->alive && !l->draining && !l->redis_down)
			n += (size_t)l->capacity;
	return n > QUEUE_BATCH ? QUEUE_BATCH : n;
}

/* How many items to peek: about as many slots as will free up during the
 * next round trip, guessed from this one's claims (twice as many, at
 * least PEEK_MIN), never more than there are slots.  Every peek reads its
 * items' bytes again, so it stays small while few tasks end. */
#define PEEK_MIN 8
static size_t peek_size(size_t all, size_t claims)
{
	size_t want = claims * 2 > PEEK_MIN ? claims * 2 : PEEK_MIN;
	return want < all ? want : all;
}

/* Claim, park or reject a batch of taken items (items) and claim the
 * peeked items that fit the free slots (pk), then send the runs.  When
 * anything was claimed (or the call had only the peek), the same round
 * trip also takes the next items for the slots still free (*next; empty
 * otherwise) and reads the queue's tail for the next peek, so a busy queue
 * costs one round trip per batch.
 * Returns 1 when it took (*next may still be empty: the queues were). */
static int dispatch(dist *d, dt_store *st, dt_batch *b, dt_strv *items, peek *pk, dt_strv *next,
		    qstats *qs)
{
	int took = 0;
	const dt_config *cfg = d->cfg;
	size_t n = items->n, npk = pk->raw.n - pk->used, cap = n + npk + 1;
	slot_item *it = calloc(n + 1, sizeof *it);
	slot_item **cx = calloc(cap, sizeof *cx);    /* each claim's item */
	dt_claim_req *cq = calloc(cap, sizeof *cq);
	dt_claim_res *cr = calloc(cap, sizeof *cr);
	dt_park_req *pq = calloc(n + 1, sizeof *pq);
	dt_bad_req *bq = calloc(n + 1, sizeof *bq);
	int *pr = calloc(n + 1, sizeof *pr), *br = calloc(n + 1, sizeof *br);
	outbuf *out = calloc(cap, sizeof *out);
	size_t nc = 0, nt = 0, np = 0, nb = 0, no = 0, psize = 0;
	dt_strv fresh = { 0 };
	int peeked = 0, tail_parked = 0, forgot = 0, rc = 0;
	char err[512];

	memset(next, 0, sizeof *next);
	if (!it || !cx || !cq || !cr || !pq || !bq || !pr || !br || !out) {
		log_error("queue: out of memory for a batch of %zu: returning it", n);
		peek_clear(pk);
		forgot = 1;
		goto out;
	}
	/* Parse outside the lock. */
	for (size_t i = 0; i < n; i++)
		item_parse(cfg, &it[i], items->v[i], items->len[i]);
	/* Place: the taken items first (they are older), then the peeked
	 * ones, oldest first, while each has a free slot. */
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < n + npk; i++) {
		slot_item *x = i < n ? &it[i] : &pk->it[pk->used + i - n];
		if (!x->parsed) {
			if (i >= n)
				break; /* a bad item: taken the plain way */
			continue;
		}
		wlink *l = place(d, x->item.function, NULL);
		x->to = l;
		if (!l) {
			if (i >= n)
				break; /* no slot for it: taken the plain way, parked */
			continue;
		}
		if (i >= n)
			nt++;
		l->outstanding++;
		size_t k;
		for (k = 0; k < no && out[k].l != l; k++)
			;
		if (k == no) {
			out[no++].l = l;
			l->refs++;
		}
	}
	psize = slots_all(d);
	pthread_mutex_unlock(&d->lock);

	for (size_t i = 0; i < n; i++) {
		if (!it[i].parsed) {
			bq[nb++] = (dt_bad_req){ it[i].raw, it[i].raw_len, it[i].why };
		} else if (!it[i].to) {
			pq[np++] = (dt_park_req){ it[i].raw, it[i].raw_len, it[i].item.function };
		} else {
			cx[nc] = &it[i];
			cq[nc++] = (dt_claim_req){ it[i].raw, it[i].raw_len, &it[i].item,
						   it[i].to->name };
		}
	}
	for (size_t j = 0; j < nt; j++) {
		slot_item *x = &pk->it[pk->used + j];
		cx[nc + j] = x;
		cq[nc + j] = (dt_claim_req){ x->raw, x->raw_len, &x->item, x->to->name };
	}
	pk->used += nt;
	psize = peek_size(psize, nc + nt);
	if (nc)
		rc = dt_batch_claim(b, d->name, cq, nc, cr);
	if (!rc && np)
		rc = dt_batch_park(b, d->name, pq, np, pr);
	if (!rc && nb)
		rc = dt_batch_bad(b, d->name, bq, nb, br);
	if (!rc && nt)
		rc = dt_batch_claim_tail(b, d->name, cq + nc, nt, cr + nc);
	if (!rc && (nc || nt || n == 0)) {
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
		/* ... and look at what comes next (after that take). */
		if (!rc && psize) {
			rc = dt_batch_peek(b, psize, &fresh);
			peeked = rc == 0;
		}
	}
	if (!rc) {
		rc = dt_batch_exec(b, err, sizeof err);
	} else {
		dt_batch_clear(b); /* what was added points at our arrays */
		snprintf(err, sizeof err, "out of memory");
	}
	if (rc < 0) {
		dt_strv_free(next); /* inflight-<name> is returned below */
		took = 0;
		peeked = 0;
	}
	qs->trips++;

	/* Bookkeeping, and the run lines per worker. */
	pthread_mutex_lock(&d->lock);
	for (size_t c = 0; c < nc + nt; c++) {
		slot_item *x = cx[c];
		wlink *l = x->to;
		int ok = rc == 0 && cr[c].status == DT_CLAIM_OK;
		if (rc == 0)
			count_claim(qs, c >= nc, cr[c].status);
		if (c >= nc && rc == 0 && cr[c].status == DT_CLAIM_PARKED)
			tail_parked = 1;
		if (!ok || !l->alive) {
			if (l->outstanding > 0)
				l->outstanding--;
			if (ok) {
				char why[96];
				requeue_now(d, x->item.id, cr[c].attempt,
					    left_before(why, sizeof why, l->name));
			}
			continue;
		}
		dt_tset_add(&l->tasks, x->item.id, cr[c].attempt);
		size_t k;
		for (k = 0; k < no && out[k].l != l; k++)
			;
		add_run(&out[k], x, cr[c].attempt);
	}
	pthread_mutex_unlock(&d->lock);

	if (rc < 0) {
		log_error("queue: Redis: %s: what was taken stays in inflight-%s and is returned "
			  "(a task claimed in that round trip all the same gets no run: the sweep "
			  "requeues it after task_timeout)", err, d->name);
	} else {
		for (size_t c = 0; c < nc + nt; c++) {
			if (cr[c].status == DT_CLAIM_DUP)
				log_warn("task %s: a duplicate item: moved to bad-task", cx[c]->item.id);
			else if (cr[c].status == DT_CLAIM_CANCELLED)
				log_info("task %s: cancelled before it ran", cx[c]->item.id);
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

	/* The next peek.  When parked items wait for a peeked item's
	 * function, the next batch is taken the plain way (take.lua serves
	 * them first); and when nothing was taken, placed or claimed, a peek
	 * would only be read again at once (the free slots are of workers
	 * without these functions): the main loop takes the plain way. */
	if (peeked && !tail_parked && (n || nt || took))
		peek_set(cfg, pk, &fresh);
	else
		peek_clear(pk);

out:
	if (rc < 0 || forgot) /* what was not applied is still in inflight-<name> */
		return_inflight(d, st);
	dt_strv_free(&fresh);
	for (size_t i = 0; it && i < n; i++)
		item_clear(&it[i]);
	for (size_t k = 0; out && k < no; k++)
		free(out[k].p);
	free(it);
	free(cx);
	free(cq);
	free(cr);
	free(pq);
	free(bq);
	free(pr);
	free(br);
	free(out);
	return took;
}

/* Each function a worker with a free slot runs, and the worker place()
 * picks for an item of it: what arrive.lua may claim for (copied). */
typedef struct amap {
	char **fn, **wk;
	size_t n;
} amap;

static void amap_free(amap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->fn[i]);
		free(m->wk[i]);
	}
	free(m->fn);
	free(m->wk);
	memset(m, 0, sizeof *m);
}

/* Under d->lock.  Out of memory: a shorter map (those items are claimed
 * the usual way). */
static void amap_build(dist *d, amap *m)
{
	size_t cap = 0;
	memset(m, 0, sizeof *m);
	for (wlink *l = d->links; l; l = l->next) {
		if (dt_link_free(l) <= 0)
			continue;
		for (size_t i = 0; i < l->nfunctions; i++) {
			const char *f = l->functions[i];
			size_t k;
			for (k = 0; k < m->n && strcmp(m->fn[k], f) != 0; k++)
				;
			if (k < m->n)
				continue;
			if (m->n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				char **nf = realloc(m->fn, ncap * sizeof *nf);
				if (nf)
					m->fn = nf;
				char **nw = nf ? realloc(m->wk, ncap * sizeof *nw) : NULL;
				if (!nw)
					return;
				m->wk = nw;
				cap = ncap;
			}
			const wlink *to = place(d, f, NULL);
			char *fc = strdup(f), *wc = to ? strdup(to->name) : NULL;
			if (!fc || !wc) {
				free(fc);
				free(wc);
				return;
			}
			m->fn[m->n] = fc;
			m->wk[m->n++] = wc;
		}
	}
}

/* A task arrive.lua claimed as it arrived (a: its DT_ARRIVE_N strings).
 * It is checked again here as dispatch() checks an item, then its run
 * goes to the worker place() picks now: the one arrive.lua was given, or,
 * when slots or workers changed during the wait, another, once the record
 * names it (arrive.lua "move", one round trip); with no free slot for it
 * left, the task is requeued at once.  An item the check here refuses
 * after all goes to bad-task (arrive.lua "undo"). */
static void arrival(dist *d, dt_store *st, const dt_strv *a, qstats *qs)
{
	slot_item x;
	const char *id = a->v[DT_ARRIVE_ID], *worker = a->v[DT_ARRIVE_WORKER];

	memset(&x, 0, sizeof x);
	item_parse(d->cfg, &x, a->v[DT_ARRIVE_TEXT], a->len[DT_ARRIVE_TEXT]);
	if (x.parsed && (strcmp(x.item.id, id) != 0 ||
			 strcmp(x.item.function, a->v[DT_ARRIVE_FUNCTION]) != 0 ||
			 x.item.attempt != 0 ||
			 x.item.clean_end != (a->v[DT_ARRIVE_CLEAN_END][0] == '1') ||
			 x.item.max_attempts != strtoll(a->v[DT_ARRIVE_MAX_ATTEMPTS], NULL, 10))) {
		x.parsed = 0;
		snprintf(x.why, sizeof x.why, "claimed as it arrived, but read otherwise here");
	}
	if (!x.parsed) {
		int status = DT_MOVE_GONE;
		char err[512];
		qs->undone++;
		if (dt_store_arrive_undo(st, d->name, id, a->v[DT_ARRIVE_RAW], a->len[DT_ARRIVE_RAW],
					 x.why, &status, err, sizeof err) < 0)
			log_error("queue: Redis: %s: task %s was claimed as it arrived but is refused "
				  "here (%s): it gets no run, and the sweep requeues it after "
				  "task_timeout", err, id, x.why);
		else if (status == DT_MOVE_OK)
			log_warn("bad queue item moved to bad-task: %s", x.why);
		item_clear(&x);
		return;
	}
	qs->arrived++;
	/* arrive.lua's worker was chosen before the wait; slots or workers may
	 * have changed since.  The run goes where the rule says now (the most
	 * free slots, ties the lowest load, a full tie the planned worker, so
	 * that it moves only when the rule says so), and the record says so
	 * first. */
	pthread_mutex_lock(&d->lock);
	wlink *l = place(d, x.item.function, worker);
	if (l) {
		l->outstanding++;
		l->refs++;
	}
	pthread_mutex_unlock(&d->lock);
	int go = l != NULL, requeue = l == NULL;
	char why[128];
	snprintf(why, sizeof why, "no worker with its function has a free slot any more");
	if (l && strcmp(l->name, worker) != 0) {
		int status = DT_MOVE_GONE;
		char err[512];
		qs->moved++;
		if (dt_store_arrive_move(st, d->name, id, worker, l->name, &status, err,
					 sizeof err) < 0) {
			log_error("queue: Redis: %s: task %s, claimed as it arrived for worker %s, "
				  "cannot be given to worker %s: requeued", err, id, worker, l->name);
			snprintf(why, sizeof why, "it could not be given to worker %.60s", l->name);
			go = 0;
			requeue = 1;
		} else if (status != DT_MOVE_OK) {
			log_info("task %s: its record moved on before its run", id);
			go = 0;
		}
	}
	if (l) {
		pthread_mutex_lock(&d->lock);
		if (go && !l->alive) {
			/* Its connection closed during the move: no run. */
			left_before(why, sizeof why, l->name);
			go = 0;
			requeue = 1;
		}
		if (go)
			dt_tset_add(&l->tasks, id, 1);
		else if (l->outstanding > 0)
			l->outstanding--;
		pthread_mutex_unlock(&d->lock);
	}
	if (requeue)
		requeue_now(d, id, 1, why);
	if (go) {
		outbuf out = { l, NULL, 0, 0 };
		add_run(&out, &x, 1);
		if (out.len && dt_conn_send_raw(l->conn, out.p, out.len) < 0)
			log_warn("worker %s: sending runs failed: it will be taken for lost", l->name);
		free(out.p);
	}
	if (l) {
		pthread_mutex_lock(&d->lock);
		dt_link_unref(d, l);
		pthread_mutex_unlock(&d->lock);
	}
	item_clear(&x);
}

/* The blocking take, with arrive.lua right behind it when a worker has a
 * free slot; what arrive.lua claimed is sent here, the rest is in *items. */
static int take_blocking(dist *d, dt_store *st, dt_strv *items, qstats *qs, char *err,
			 size_t errlen)
{
	int wait = block_time(d, st);
	amap m;
	char fresh[DT_UUID_LEN + 1];
	pthread_mutex_lock(&d->lock);
	amap_build(d, &m);
	pthread_mutex_unlock(&d->lock);
	dt_strv got = { 0 };
	int rc;
	if (!m.n || dt_uuid4(fresh) != 0) {
		rc = dt_store_take_blocking(st, d->name, wait, items, err, errlen);
	} else {
		dt_arrive_req req = { (const char *const *)m.fn, (const char *const *)m.wk, m.n,
				      fresh, d->cfg->max_message, DT_MAX_ATTEMPTS_DEFAULT };
		rc = dt_store_take_arrive(st, d->name, wait, &req, items, &got, err, errlen);
	}
	amap_free(&m);
	if (rc < 0) {
		/* The BLMOVE may have moved an item all the same (and arrive.lua
		 * claimed it or not): put back whatever is in inflight-<name>.  A
		 * claim whose answer was lost is requeued by the sweep after
		 * task_timeout. */
		return_inflight(d, st);
		return rc;
	}
	if (got.n == DT_ARRIVE_N) {
		arrival(d, st, &got, qs);
		/* The item the BLMOVE returned, claimed: not taken twice. */
		if (items->n == 1 && items->len[0] == got.len[DT_ARRIVE_RAW] &&
		    memcmp(items->v[0], got.v[DT_ARRIVE_RAW], items->len[0]) == 0)
			dt_strv_free(items);
	}
	dt_strv_free(&got);
	return rc;
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
	peek pk = { 0 };
	qstats qs = { 0 };
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
				took = dispatch(d, st, b, &items, &pk, &next, &qs);
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
		if (pk.used < pk.raw.n) {
			/* Slots are free and the queue's tail was read: claim
			 * from it (the plain way when none fits). */
			free_plan(fns, counts, nf);
			dt_strv none = { 0 };
			took = dispatch(d, st, b, &none, &pk, &next, &qs);
			continue;
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
			rc = take_blocking(d, st, &items, &qs, err, sizeof err);
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
			took = dispatch(d, st, b, &items, &pk, &next, &qs);
		dt_strv_free(&items);
	}
	dt_strv_free(&next);
	peek_clear(&pk);
	log_info("queue: %llu round trip(s): %llu taken item(s) claimed, %llu claimed straight "
		 "off new-task's tail (%llu more found gone, %llu left for parked ones), %llu "
		 "claimed as they arrived (%llu of them refused here after all, %llu given to "
		 "another worker than planned)",
		 qs.trips, qs.taken, qs.tail, qs.tail_gone, qs.tail_parked, qs.arrived, qs.undone,
		 qs.moved);
done:
	dt_batch_free(b);
	dt_store_free(st);
	return NULL;
}
