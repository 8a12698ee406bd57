/*
 * dtask-bench - the peers' harness workloads (../shared/peers, README
 * "Workloads") run against distributed-task itself.
 *
 *   dtask-bench [--workloads A,B] [--reps N] [--json] [--keep] [--redis-stats]
 *               [-n N] [--lat-n N] [--rate R] [--slots N] [--distributor PATH]
 *               [--redis-server PATH]
 *   dtask-bench worker -c CONFIG -f     (internal: one worker unit)
 *
 * It starts its own cluster in a temporary folder: a private redis-server
 * on a free loopback port (--save '' --appendonly no, like the harness),
 * certificates by scripts/dtask-gencerts, one dtask-distributor, and
 * worker units that are this program in "worker" mode: an embedded worker
 * on the public API (dtask_worker_main) with 8 task slots and the
 * functions bnoop (does nothing) and blat (records now - data.t, in us).
 * Every process is stopped by its PID; the folder is removed (--keep: not).
 *
 * Measurement sink (as the harness's): each worker process counts
 * completions in memory (first start, last return) and a 10 ms thread
 * writes "count first_start_us last_done_us" to the hash bench:progress and
 * pushes new latencies to bench:lat, so a task costs a counter increment.
 *
 * A (throughput, N = 20,000): FLUSHDB; N tasks one by one, each waiting
 * for its reply (tasks/s); FLUSHDB; N tasks batched, 1,000 per
 * dtask_submit_many() (one round trip each; tasks/s); then 2 worker units are spawned and the time
 * from just before the spawn until the last task's END is written in Redis
 * (every function returned, per bench:progress, and the set `tasks` empty:
 * with clean_end the END deletes the record) gives tasks/s; "steady" is
 * from the first task start to that point.  Also the CPU time (user + sys)
 * the workers, the distributor and Redis spent on the drain, per 1,000
 * tasks: less noisy than rates on a shared machine; and their wake-ups
 * per task (voluntary context switches: each a thread that slept and was
 * woken), which is what most of that CPU pays for on a VM.
 * B (latency): FLUSHDB; 2 fresh worker units, registered, then 1 s idle;
 * 2,000 tasks submitted one at a time at 200/s on an absolute schedule,
 * each with its submit time (CLOCK_REALTIME us) in data.t, taken just
 * before the submit; the task computes start - submit as its first action.
 * p50 / p99 (linear interpolation) / max, in ms.
 * B's floor on this machine: before B, one wake-up hop of the kind B's
 * path is made of, timed alone: a process blocked in recv on a loopback
 * TCP socket, woken by another process's send, 400 times at B's rate;
 * p50 / p99 of send-to-woken-receiver, in ms.  Every B task crosses at
 * least four such hops in a row (the submit to Redis, Redis to the
 * distributor, which gets it claimed already by the script it pipelined
 * behind its BLMOVE, the run to the worker, the worker to a task thread);
 * a submit with a claim in between cannot start in fewer.
 *
 * --redis-stats adds, on stderr, Redis's own account of A's drain and of
 * B's submissions (INFO commandstats): calls per task and CPU ms per 1,000
 * tasks by command.
 * Producers use the client API: dtask_submit() one by one, and
 * dtask_submit_many() for the batches (one LPUSH per 1,000).
 * --reps N runs A and B N times on the same cluster and reports each
 * figure's median (the mean of the middle two for an even N), in text with
 * the lowest and highest run (not for the CPU and B's submit rate), in JSON with every run's A rate and B p50
 * and p99 ("..._runs").  --slots sets the task slots of each worker unit.
 * Output: one line per figure, or with --json one JSON object.
 * Not installed: built by "make" in the build tree only.
 */
#include "build-config.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <hiredis/hiredis.h>

#include "dtask.h"

#ifndef DT_ABS_BUILDDIR
#define DT_ABS_BUILDDIR "."
#endif
#ifndef DT_ABS_SRCDIR
#define DT_ABS_SRCDIR "."
#endif

static int SLOTS = 8;
#define UNITS 2

static int64_t real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void nap_us(int64_t us)
{
	if (us <= 0)
		return;
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ================================================================ worker */

/* Count, first start and last return are atomics (8 task threads end at
 * once: a shared lock there would measure the sink); the lock guards the
 * latencies only. */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_llong sink_count;
static _Atomic int64_t sink_first, sink_last;
static int64_t *sink_lat;
static size_t sink_nlat, sink_caplat, sink_lat_sent;

static void sink_done(int64_t start_us, int64_t lat_us, int has_lat)
{
	int64_t now = real_us();
	/* First and last before the count: whoever reads the count first
	 * reads a last at least as late. */
	int64_t f = atomic_load(&sink_first);
	while ((!f || start_us < f) && !atomic_compare_exchange_weak(&sink_first, &f, start_us))
		;
	int64_t l = atomic_load(&sink_last);
	while (now > l && !atomic_compare_exchange_weak(&sink_last, &l, now))
		;
	atomic_fetch_add(&sink_count, 1);
	if (!has_lat)
		return;
	pthread_mutex_lock(&sink_lock);
	{
		if (sink_nlat == sink_caplat) {
			size_t ncap = sink_caplat ? 2 * sink_caplat : 4096;
			int64_t *n = realloc(sink_lat, ncap * sizeof *n);
			if (n) {
				sink_lat = n;
				sink_caplat = ncap;
			}
		}
		if (sink_nlat < sink_caplat)
			sink_lat[sink_nlat++] = lat_us;
	}
	pthread_mutex_unlock(&sink_lock);
}

static dtask_status fn_bnoop(dtask *t, void *arg)
{
	(void)t;
	(void)arg;
	sink_done(real_us(), 0, 0);
	return DTASK_END;
}

static dtask_status fn_blat(dtask *t, void *arg)
{
	(void)arg;
	int64_t now = real_us();
	const char *d = dtask_data(t), *p = d ? strstr(d, "\"t\":") : NULL;
	int64_t sub = p ? strtoll(p + 4, NULL, 10) : 0;
	sink_done(now, sub > 0 ? now - sub : -1, 1);
	return DTASK_END;
}

/* The 10 ms reporter: bench:progress when it changed, new latencies. */
static void *sink_main(void *arg)
{
	(void)arg;
	const char *ps = getenv("BENCH_REDIS_PORT");
	int port = ps ? atoi(ps) : 6379;
	redisContext *c = NULL;
	long long sent = -1;
	char pid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	for (;;) {
		nap_us(10000);
		if (!c || c->err) {
			if (c)
				redisFree(c);
			c = redisConnect("127.0.0.1", port);
			if (!c || c->err)
				continue;
		}
		long long cnt = atomic_load(&sink_count);
		int64_t f = atomic_load(&sink_first), l = atomic_load(&sink_last);
		pthread_mutex_lock(&sink_lock);
		size_t from = sink_lat_sent, to = sink_nlat;
		char **lv = NULL;
		if (to > from && (lv = calloc(to - from + 2, sizeof *lv))) {
			for (size_t i = from; i < to; i++) {
				char b[32];
				snprintf(b, sizeof b, "%lld", (long long)sink_lat[i]);
				lv[2 + i - from] = strdup(b);
			}
		}
		pthread_mutex_unlock(&sink_lock);
		if (lv) {
			lv[0] = "RPUSH";
			lv[1] = "bench:lat";
			redisReply *r = redisCommandArgv(c, (int)(to - from + 2), (const char **)lv, NULL);
			if (r) {
				pthread_mutex_lock(&sink_lock);
				sink_lat_sent = to;
				pthread_mutex_unlock(&sink_lock);
				freeReplyObject(r);
			}
			for (size_t i = 2; i < to - from + 2; i++)
				free(lv[i]);
			free(lv);
		}
		if (cnt != sent) {
			char val[96];
			snprintf(val, sizeof val, "%lld %lld %lld", cnt, (long long)f, (long long)l);
			redisReply *r = redisCommand(c, "HSET bench:progress %s %s", pid, val);
			if (r) {
				sent = cnt;
				freeReplyObject(r);
			}
		}
	}
	return NULL;
}

static int worker_setup(dtask_worker *w)
{
	pthread_t tid;
	if (dtask_worker_add(w, "bnoop", fn_bnoop, NULL) < 0 ||
	    dtask_worker_add(w, "blat", fn_blat, NULL) < 0)
		return -1;
	if (pthread_create(&tid, NULL, sink_main, NULL) != 0)
		return -1;
	pthread_detach(tid);
	return 0;
}

/* ========================================================== orchestrator */

static char tmpdir[256];
static pid_t pids[16];
static size_t npids;
static int keep;

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof a;
	int port = -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

/* Start argv with stdout and stderr to logfile, in its own session. */
static pid_t spawn(char *const argv[], const char *logfile, const char *envport)
{
	pid_t p = fork();
	if (p < 0)
		return -1;
	if (p == 0) {
		setsid();
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (nul >= 0)
			dup2(nul, 0);
		if (envport)
			setenv("BENCH_REDIS_PORT", envport, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	if (npids < sizeof pids / sizeof pids[0])
		pids[npids++] = p;
	return p;
}

static void stop_pid(pid_t p)
{
	if (p <= 0)
		return;
	kill(p, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(p, NULL, WNOHANG) == p)
			goto gone;
		nap_us(10000);
	}
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
gone:
	for (size_t i = 0; i < npids; i++)
		if (pids[i] == p)
			pids[i] = 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(path);
}

static void cleanup(void)
{
	for (size_t i = npids; i-- > 0;)
		stop_pid(pids[i]);
	if (tmpdir[0] && !keep)
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else if (tmpdir[0])
		fprintf(stderr, "dtask-bench: kept %s\n", tmpdir);
}

static void on_signal(int sig)
{
	(void)sig;
	cleanup();
	_exit(3);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "dtask-bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	cleanup();
	exit(2);
}

/* A command of space-separated words (no quoting needed here). */
static redisReply *cmd(redisContext *c, const char *line)
{
	char buf[256];
	const char *av[8];
	int ac = 0;
	snprintf(buf, sizeof buf, "%s", line);
	for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && ac < 8;
	     w = strtok_r(NULL, " ", &save))
		av[ac++] = w;
	redisReply *r = redisCommandArgv(c, ac, av, NULL);
	if (!r)
		die("redis: %s", c->errstr);
	return r;
}

static long long cmd_int(redisContext *c, const char *what)
{
	redisReply *r = cmd(c, what);
	long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	return v;
}

static void flushdb(redisContext *c)
{
	freeReplyObject(cmd(c, "FLUSHDB"));
}

/* Sum of bench:progress: count, min first start, max last done. */
static long long progress(redisContext *c, int64_t *first, int64_t *last)
{
	redisReply *r = cmd(c, "HVALS bench:progress");
	long long total = 0;
	*first = 0;
	*last = 0;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		long long n = 0, f = 0, l = 0;
		if (sscanf(r->element[i]->str, "%lld %lld %lld", &n, &f, &l) == 3) {
			total += n;
			if (f && (!*first || f < *first))
				*first = f;
			if (l > *last)
				*last = l;
		}
	}
	freeReplyObject(r);
	return total;
}

/* utime + stime of a live process, in ms (/proc/PID/stat), or 0. */
static double proc_cpu_ms(pid_t p)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)p);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *q = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	if (!q || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* Voluntary context switches (each a sleep and a wake-up) of every live
 * thread of process p. */
static double proc_vcsw(pid_t p)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/task", (long)p);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	unsigned long long sum = 0;
	const struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char sp[640], line[256];
		if (snprintf(sp, sizeof sp, "%s/%.256s/status", path, e->d_name) >= (int)sizeof sp)
			continue;
		FILE *f = fopen(sp, "r");
		if (!f)
			continue;
		unsigned long long v;
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1)
				sum += v;
		fclose(f);
	}
	closedir(d);
	return (double)sum;
}

/* The same for the reaped children (the workers, once stopped). */
static double children_vcsw(void)
{
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_nvcsw;
}

/* CPU of the reaped children (the workers, once stopped), in ms. */
static double children_cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

static char self_exe[4096], worker_conf[512], redis_port_s[16];
static pid_t workers[UNITS];

static void spawn_workers(void)
{
	for (int i = 0; i < UNITS; i++) {
		char log[512];
		snprintf(log, sizeof log, "%s/worker-%d.log", tmpdir, i);
		char *argv[] = { self_exe, "worker", "-c", worker_conf, "-f", NULL };
		if ((workers[i] = spawn(argv, log, redis_port_s)) < 0)
			die("cannot start a worker: %s", strerror(errno));
	}
}

static void stop_workers(void)
{
	for (int i = 0; i < UNITS; i++)
		kill(workers[i], SIGTERM);
	for (int i = 0; i < UNITS; i++)
		stop_pid(workers[i]);
}

/* --redis-stats: where Redis spent its time during A's drain or B's
 * submissions (what), from INFO commandstats (reset just before): for each
 * command with calls, calls per task and CPU us per 1,000 tasks.  On
 * stderr. */
static void print_redis_stats(redisContext *c, int n, const char *what)
{
	redisReply *r = cmd(c, "INFO commandstats");
	char *line = r->str, *save = NULL;
	fprintf(stderr, "# Redis during %s (per task: calls; per 1,000 tasks: CPU ms)\n", what);
	for (line = strtok_r(line, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		char name[64];
		long long calls = 0;
		double usec = 0;
		if (sscanf(line, "cmdstat_%63[^:]:calls=%lld,usec=%lf", name, &calls, &usec) == 3 &&
		    calls > 0)
			fprintf(stderr, "#   %-14s %8.3f calls  %8.2f ms\n", name, (double)calls / n,
				usec / n);
	}
	freeReplyObject(r);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	double k = (double)(n - 1) * p / 100.0;
	size_t lo = (size_t)k, hi = lo + 1 < n ? lo + 1 : lo;
	return (double)v[lo] + ((double)v[hi] - (double)v[lo]) * (k - (double)lo);
}

/* ============================================================= figures */

enum { F_ONE, F_BATCH, F_TPS, F_STEADY, F_STARTUP, F_CPU_W, F_CPU_D, F_CPU_R, F_SW_W, F_SW_D,
       F_SW_R, F_RATE, F_P50, F_P99, F_MAX, F_NLAT, F_HOP50, F_HOP99, NFIG };

/* ================================================================ B's floor */

#define HOPS 400

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int io_all(int fd, void *p, size_t n, int writing)
{
	char *c = p;
	while (n > 0) {
		ssize_t k = writing ? write(fd, c, n) : read(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

/* One idle wake-up hop, HOPS times at rate per second: a child blocked in
 * read on a loopback TCP connection, woken by our send of the time; it
 * sends back every send-to-wake time (ns).  p50 and p99 in ms. */
static void hop_floor(int rate, double *p50, double *p99)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0), s;
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1) < 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
		die("hop floor: cannot listen on loopback: %s", strerror(errno));
	pid_t c = fork();
	if (c < 0)
		die("hop floor: fork: %s", strerror(errno));
	if (c == 0) {
		/* Not the cluster's owner: a signal just ends it. */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		static int64_t got[HOPS];
		int r = accept(ls, NULL, NULL);
		if (r < 0)
			_exit(1);
		setsockopt(r, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		for (int i = 0; i < HOPS; i++) {
			int64_t sent;
			if (io_all(r, &sent, sizeof sent, 0) < 0)
				_exit(1);
			got[i] = mono_ns() - sent;
		}
		_exit(io_all(r, got, sizeof got, 1) < 0);
	}
	close(ls);
	static int64_t v[HOPS];
	const char *fail = NULL;
	int64_t period = 1000000 / rate;
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(s, (struct sockaddr *)&a, sizeof a) < 0)
		fail = "cannot connect";
	else
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	for (int i = 0; !fail && i < HOPS; i++) {
		nap_us(period);
		int64_t now = mono_ns();
		if (io_all(s, &now, sizeof now, 1) < 0)
			fail = "the receiver is gone";
	}
	if (!fail && io_all(s, v, sizeof v, 0) < 0)
		fail = "no times back from the receiver";
	if (s >= 0)
		close(s);
	if (fail)
		kill(c, SIGKILL);
	int st;
	waitpid(c, &st, 0);
	if (fail)
		die("hop floor: %s", fail);
	qsort(v, HOPS, sizeof *v, cmp_i64);
	*p50 = pct(v, HOPS, 50) / 1e6;
	*p99 = pct(v, HOPS, 99) / 1e6;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median (the mean of the middle two for an even count), lowest and
 * highest of figure f over the runs. */
static void spread(double (*runs)[NFIG], int reps, int f, double *med, double *lo, double *hi)
{
	double v[50] = { 0 };
	for (int i = 0; i < reps; i++)
		v[i] = runs[i][f];
	qsort(v, (size_t)reps, sizeof v[0], cmp_dbl);
	*med = reps % 2 ? v[reps / 2] : (v[reps / 2 - 1] + v[reps / 2]) / 2;
	*lo = v[0];
	*hi = v[reps - 1];
}

/* One text line: the label, the median, the unit, then
 * "(lowest-highest)" after several runs. */
static void print_figure(const char *label, const double *med, const double *lo,
			 const double *hi, int f, int reps, int decimals, const char *unit)
{
	printf("%-34s %9.*f %s", label, decimals, med[f], unit);
	if (reps > 1)
		printf("  (%.*f-%.*f)", decimals, lo[f], decimals, hi[f]);
	printf("\n");
}

/* ,"<key>_runs":[every run's figure f] */
static void print_all(const char *key, double (*runs)[NFIG], int reps, int f, int decimals)
{
	printf(",\"%s_runs\":[", key);
	for (int i = 0; i < reps; i++)
		printf("%s%.*f", i ? "," : "", decimals, runs[i][f]);
	printf("]");
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "worker") == 0)
		return dtask_worker_main(argc - 1, argv + 1, worker_setup);

	const char *workloads = "A,B";
	const char *dist_bin = DT_ABS_BUILDDIR "/src/distributor/dtask-distributor";
	const char *redis_server = "/usr/bin/redis-server";
	int json = 0, n = 20000, lat_n = 2000, rate = 200, redis_stats = 0, reps = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--json"))
			json = 1;
		else if (!strcmp(a, "--keep"))
			keep = 1;
		else if (!strcmp(a, "--redis-stats"))
			redis_stats = 1;
		else if (!strcmp(a, "--workloads") && v)
			workloads = argv[++i];
		else if (!strcmp(a, "-n") && v)
			n = atoi(argv[++i]);
		else if (!strcmp(a, "--lat-n") && v)
			lat_n = atoi(argv[++i]);
		else if (!strcmp(a, "--slots") && v)
			SLOTS = atoi(argv[++i]);
		else if (!strcmp(a, "--rate") && v)
			rate = atoi(argv[++i]);
		else if (!strcmp(a, "--reps") && v)
			reps = atoi(argv[++i]);
		else if (!strcmp(a, "--distributor") && v)
			dist_bin = argv[++i];
		else if (!strcmp(a, "--redis-server") && v)
			redis_server = argv[++i];
		else {
			fprintf(stderr, "usage: dtask-bench [--workloads A,B] [--reps N] [--json] [--keep] "
					"[--redis-stats] [-n N] [--lat-n N] [--rate R] [--slots N] "
					"[--distributor PATH] [--redis-server PATH]\n");
			return 2;
		}
	}
	if (n <= 0 || lat_n <= 0 || rate <= 0 || SLOTS <= 0) {
		fprintf(stderr, "dtask-bench: -n, --lat-n, --rate and --slots must be positive\n");
		return 2;
	}
	if (reps < 1 || reps > 50) {
		fprintf(stderr, "dtask-bench: --reps must be from 1 to 50\n");
		return 2;
	}
	int do_a = strchr(workloads, 'A') != NULL, do_b = strchr(workloads, 'B') != NULL;
	ssize_t sl = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (sl <= 0)
		die("cannot find my own program: %s", strerror(errno));
	self_exe[sl] = '\0';

	snprintf(tmpdir, sizeof tmpdir, "%s/dtask-bench.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		tmpdir[0] = '\0';
		die("mkdtemp: %s", strerror(errno));
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN); /* a peer gone is an error return, not our end */

	/* Redis. */
	pid_t redis_pid, dist_pid;
	int rport = free_port();
	snprintf(redis_port_s, sizeof redis_port_s, "%d", rport);
	char log[512], path[512];
	snprintf(log, sizeof log, "%s/redis.log", tmpdir);
	{
		char *av[] = { (char *)redis_server, "--port", redis_port_s, "--bind", "127.0.0.1",
			       "--save", "", "--appendonly", "no", "--dir", tmpdir,
			       "--daemonize", "no", NULL };
		if ((redis_pid = spawn(av, log, NULL)) < 0)
			die("cannot start %s", redis_server);
	}
	redisContext *rc = NULL;
	for (int i = 0; i < 500; i++) {
		rc = redisConnect("127.0.0.1", rport);
		if (rc && !rc->err)
			break;
		if (rc)
			redisFree(rc);
		rc = NULL;
		nap_us(10000);
	}
	if (!rc)
		die("redis-server did not start (see %s)", log);

	/* Certificates. */
	snprintf(path, sizeof path, "%s/tls", tmpdir);
	{
		const char *gencerts = DT_ABS_SRCDIR "/scripts/dtask-gencerts";
		char c[2048];
		snprintf(c, sizeof c, "sh '%s' -n 127.0.0.1 -n localhost '%s' >'%s/gencerts.log' 2>&1",
			 gencerts, path, tmpdir);
		if (system(c) != 0)
			die("dtask-gencerts failed (see %s/gencerts.log)", tmpdir);
	}

	/* The distributor. */
	char dconf[512];
	snprintf(dconf, sizeof dconf, "%s/dist.json", tmpdir);
	FILE *f = fopen(dconf, "w");
	if (!f)
		die("cannot write %s", dconf);
	fprintf(f,
		"{\"share_key\": \"bench\", \"cert\": \"%s/cert.pem\", \"key\": \"%s/key.pem\",\n"
		" \"ca\": \"%s/ca.pem\", \"redis\": {\"host\": \"127.0.0.1\", \"port\": %d},\n"
		" \"host\": \"127.0.0.1\", \"port\": 0, \"name\": \"bench-distributor\"}\n",
		path, path, path, rport);
	fclose(f);
	snprintf(log, sizeof log, "%s/distributor.log", tmpdir);
	{
		char *av[] = { (char *)dist_bin, "-c", dconf, "-f", NULL };
		if ((dist_pid = spawn(av, log, NULL)) < 0)
			die("cannot start %s", dist_bin);
	}
	int dport = 0;
	for (int i = 0; i < 1000 && !dport; i++) {
		nap_us(10000);
		FILE *lf = fopen(log, "r");
		char line[1024];
		while (lf && fgets(line, sizeof line, lf)) {
			char *p = strstr(line, "listening on ");
			char *colon = p ? strrchr(p, ':') : NULL;
			if (colon)
				dport = atoi(colon + 1);
		}
		if (lf)
			fclose(lf);
	}
	if (!dport)
		die("the distributor did not start (see %s)", log);
	snprintf(worker_conf, sizeof worker_conf, "%s/worker.json", tmpdir);
	if (!(f = fopen(worker_conf, "w")))
		die("cannot write %s", worker_conf);
	fprintf(f,
		"{\"share_key\": \"bench\", \"cert\": \"%s/cert.pem\", \"key\": \"%s/key.pem\",\n"
		" \"ca\": \"%s/ca.pem\", \"redis\": {\"host\": \"127.0.0.1\", \"port\": %d},\n"
		" \"distributors\": [[\"127.0.0.1\", %d]], \"watch_host\": \"127.0.0.1\",\n"
		" \"threads\": %d}\n",
		path, path, path, rport, dport, SLOTS);
	fclose(f);

	/* Producers use the client API (include/dtask.h), as the peers'
	 * producers use theirs. */
	char *cerr = NULL;
	dtask_client *cl = dtask_client_new(dconf, &cerr);
	if (!cl)
		die("client: %s", cerr ? cerr : "?");

	/* Each figure of each repetition; the medians are reported. */
	double (*runs)[NFIG] = calloc((size_t)reps, sizeof *runs);
	if (!runs)
		die("%s", "out of memory");
	for (int rep = 0; rep < reps; rep++) {
		double one_rate = 0, batch_rate = 0, a_tps = 0, a_steady = 0, a_startup = 0;
		double cpu_w = 0, cpu_d = 0, cpu_r = 0; /* A's drain: CPU ms per 1,000 tasks */
		double sw_w = 0, sw_d = 0, sw_r = 0;    /* ... and wake-ups per task */
		double p50 = 0, p99 = 0, pmax = 0, achieved = 0;
		size_t nlat = 0;

		if (do_a) {
			char buf[128];
			/* 1. one by one */
			flushdb(rc);
			int64_t t0 = real_us();
			for (int i = 0; i < n; i++) {
				snprintf(buf, sizeof buf, "{\"i\":%d}", i);
				if (dtask_submit(cl, "bnoop", buf, NULL, NULL) < 0)
					die("submit: %s", dtask_client_error(cl));
			}
			one_rate = n / ((double)(real_us() - t0) / 1e6);
			/* 2. batched, 1000 per round trip */
			flushdb(rc);
			const char **av = calloc(1000, sizeof *av);
			char (*items)[64] = calloc(1000, sizeof *items);
			if (!av || !items)
				die("%s", "out of memory");
			t0 = real_us();
			for (int i = 0; i < n; i += 1000) {
				int k = n - i < 1000 ? n - i : 1000;
				for (int j = 0; j < k; j++) {
					snprintf(items[j], sizeof items[j],
						 "{\"function\":\"bnoop\",\"data\":{\"i\":%d}}", i + j);
					av[j] = items[j];
				}
				if (dtask_submit_many(cl, av, (size_t)k) < 0)
					die("submit_many: %s", dtask_client_error(cl));
			}
			batch_rate = n / ((double)(real_us() - t0) / 1e6);
			free(av);
			free(items);
			/* 3. drain */
			if (redis_stats)
				freeReplyObject(cmd(rc, "CONFIG RESETSTAT"));
			double w0 = children_cpu_ms(), d0 = proc_cpu_ms(dist_pid), r0 = proc_cpu_ms(redis_pid);
			double sw0 = children_vcsw(), sd0 = proc_vcsw(dist_pid), sr0 = proc_vcsw(redis_pid);
			int64_t spawn_us = real_us();
			spawn_workers();
			int64_t first = 0, last = 0, done_us = 0;
			for (;;) {
				nap_us(2000);
				long long cnt = progress(rc, &first, &last);
				if (cnt >= n && cmd_int(rc, "SCARD tasks") == 0) {
					done_us = real_us();
					break;
				}
				if (real_us() - spawn_us > 300 * 1000000LL)
					die("%s", "A: not drained within 300 s");
			}
			/* The END of the last task is written when `tasks` is empty;
			 * its function returned at `last`: use the later one seen. */
			if (done_us < last)
				done_us = last;
			a_tps = n / ((double)(done_us - spawn_us) / 1e6);
			a_steady = n / ((double)(done_us - first) / 1e6);
			a_startup = (double)(first - spawn_us) / 1e6;
			cpu_d = (proc_cpu_ms(dist_pid) - d0) * 1000.0 / n;
			cpu_r = (proc_cpu_ms(redis_pid) - r0) * 1000.0 / n;
			sw_d = (proc_vcsw(dist_pid) - sd0) / n;
			sw_r = (proc_vcsw(redis_pid) - sr0) / n;
			if (redis_stats)
				print_redis_stats(rc, n, "A's drain");
			stop_workers();
			cpu_w = (children_cpu_ms() - w0) * 1000.0 / n;
			sw_w = (children_vcsw() - sw0) / n;
		}

		double hop50 = 0, hop99 = 0;
		if (do_b) {
			hop_floor(rate, &hop50, &hop99);
			flushdb(rc);
			spawn_workers();
			int64_t t0 = real_us();
			while (cmd_int(rc, "SCARD workers") < UNITS) {
				if (real_us() - t0 > 30 * 1000000LL)
					die("%s", "B: the workers did not register within 30 s");
				nap_us(10000);
			}
			nap_us(1000000);
			if (redis_stats)
				freeReplyObject(cmd(rc, "CONFIG RESETSTAT"));
			char buf[128];
			int64_t period = 1000000 / rate, start = real_us() + 1000;
			for (int i = 0; i < lat_n; i++) {
				int64_t due = start + i * period, now;
				nap_us(due - real_us() - 1000);
				while ((now = real_us()) < due)
					;
				snprintf(buf, sizeof buf, "{\"t\":%lld}", (long long)real_us());
				if (dtask_submit(cl, "blat", buf, NULL, NULL) < 0)
					die("submit: %s", dtask_client_error(cl));
			}
			achieved = lat_n / ((double)(real_us() - start) / 1e6);
			int64_t t1 = real_us();
			while (cmd_int(rc, "LLEN bench:lat") < lat_n) {
				if (real_us() - t1 > 150 * 1000000LL)
					die("%s", "B: not all latencies within 150 s");
				nap_us(10000);
			}
			if (redis_stats)
				print_redis_stats(rc, lat_n, "B's submissions");
			redisReply *r = cmd(rc, "LRANGE bench:lat 0 -1");
			int64_t *v = calloc(r->elements ? r->elements : 1, sizeof *v);
			if (!v)
				die("%s", "out of memory");
			for (size_t i = 0; i < r->elements; i++)
				v[nlat++] = strtoll(r->element[i]->str, NULL, 10);
			freeReplyObject(r);
			qsort(v, nlat, sizeof *v, cmp_i64);
			p50 = pct(v, nlat, 50) / 1000.0;
			p99 = pct(v, nlat, 99) / 1000.0;
			pmax = nlat ? (double)v[nlat - 1] / 1000.0 : 0;
			free(v);
			stop_workers();
		}
		const double fig[NFIG] = {
			[F_ONE] = one_rate, [F_BATCH] = batch_rate, [F_TPS] = a_tps,
			[F_STEADY] = a_steady, [F_STARTUP] = a_startup, [F_CPU_W] = cpu_w,
			[F_CPU_D] = cpu_d, [F_CPU_R] = cpu_r, [F_SW_W] = sw_w, [F_SW_D] = sw_d,
			[F_SW_R] = sw_r, [F_RATE] = achieved, [F_P50] = p50,
			[F_P99] = p99, [F_MAX] = pmax, [F_NLAT] = (double)nlat, [F_HOP50] = hop50,
			[F_HOP99] = hop99
		};
		memcpy(runs[rep], fig, sizeof fig);
	}

	dtask_client_free(cl);
	redisFree(rc);
	cleanup();

	double med[NFIG], lo[NFIG], hi[NFIG];
	for (int k = 0; k < NFIG; k++)
		spread(runs, reps, k, &med[k], &lo[k], &hi[k]);
	if (json) {
		printf("{\"n\":%d,\"reps\":%d", n, reps);
		if (do_a) {
			printf(",\"enqueue_one_per_s\":%.0f,\"enqueue_batch_per_s\":%.0f,"
			       "\"a_tasks_per_s\":%.0f,\"a_steady_tasks_per_s\":%.0f,\"a_startup_s\":%.3f,"
			       "\"a_cpu_ms_per_1k\":{\"workers\":%.1f,\"distributor\":%.1f,\"redis\":%.1f},"
			       "\"a_wakeups_per_task\":{\"workers\":%.2f,\"distributor\":%.2f,\"redis\":%.2f}",
			       med[F_ONE], med[F_BATCH], med[F_TPS], med[F_STEADY], med[F_STARTUP],
			       med[F_CPU_W], med[F_CPU_D], med[F_CPU_R], med[F_SW_W], med[F_SW_D],
			       med[F_SW_R]);
			print_all("a_tasks_per_s", runs, reps, F_TPS, 0);
		}
		if (do_b) {
			printf(",\"b_n\":%.0f,\"b_rate\":%.1f,\"b_p50_ms\":%.3f,\"b_p99_ms\":%.3f,"
			       "\"b_max_ms\":%.3f",
			       med[F_NLAT], med[F_RATE], med[F_P50], med[F_P99], med[F_MAX]);
			print_all("b_p50_ms", runs, reps, F_P50, 3);
			print_all("b_p99_ms", runs, reps, F_P99, 3);
			printf(",\"b_hop_p50_ms\":%.3f,\"b_hop_p99_ms\":%.3f", med[F_HOP50],
			       med[F_HOP99]);
		}
		printf("}\n");
	} else {
		if (reps > 1)
			printf("Medians of %d runs (lowest-highest in brackets)\n", reps);
		if (do_a) {
			print_figure("A enqueue one by one:", med, lo, hi, F_ONE, reps, 0, "tasks/s");
			print_figure("A enqueue batched (1000/trip):", med, lo, hi, F_BATCH, reps, 0, "tasks/s");
			print_figure("A throughput (spawn -> last END):", med, lo, hi, F_TPS, reps, 0, "tasks/s");
			print_figure("A steady (first start -> last END):", med, lo, hi, F_STEADY, reps, 0, "tasks/s");
			print_figure("A start-up (spawn -> first start):", med, lo, hi, F_STARTUP, reps, 3, "s");
			printf("%-34s workers %.1f ms, distributor %.1f ms, redis %.1f ms\n",
			       "A CPU per 1,000 tasks (drain):", med[F_CPU_W], med[F_CPU_D],
			       med[F_CPU_R]);
			printf("%-34s workers %.2f, distributor %.2f, redis %.2f\n",
			       "A wake-ups per task (drain):", med[F_SW_W], med[F_SW_D], med[F_SW_R]);
		}
		if (do_b) {
			printf("%-34s %9.1f tasks/s (%.0f latencies)\n", "B submit rate:", med[F_RATE],
			       med[F_NLAT]);
			print_figure("B latency p50:", med, lo, hi, F_P50, reps, 3, "ms");
			print_figure("B latency p99:", med, lo, hi, F_P99, reps, 3, "ms");
			print_figure("B latency max:", med, lo, hi, F_MAX, reps, 3, "ms");
			print_figure("B floor: one idle hop p50:", med, lo, hi, F_HOP50, reps, 3, "ms");
			print_figure("B floor: one idle hop p99:", med, lo, hi, F_HOP99, reps, 3, "ms");
		}
	}
	free(runs);
	return 0;
}
