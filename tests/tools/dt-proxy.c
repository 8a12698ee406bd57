/*
 * dt-proxy - a TCP relay on loopback that a test can cut and mend, to take
 * one process's link away (say, a worker's link to Redis) while everyone
 * else keeps theirs.
 *
 *   dt-proxy -P TARGET_PORT [-H TARGET_HOST] -o PORTFILE
 *
 * Listens on 127.0.0.1, on a port the kernel picks, written to PORTFILE
 * once it listens, and relays each connection to TARGET_HOST:TARGET_PORT
 * (default 127.0.0.1).
 *   SIGUSR1  cut: every relayed connection is closed, and new ones are
 *            closed as soon as they are accepted;
 *   SIGUSR2  mend: relay again;
 *   SIGTERM, SIGINT  exit.
 * Each cut and mend is logged on stderr.  One thread, poll(2).
 */
#include "build-config.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

#define MAX_PAIRS 64

static volatile sig_atomic_t want_cut, want_mend, want_exit;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_cut = 1;
	else if (sig == SIGUSR2)
		want_mend = 1;
	else
		want_exit = 1;
}

struct pair {
	int a, b; /* accepted, to the target; -1: free */
};

static void close_pair(struct pair *p)
{
	if (p->a >= 0)
		close(p->a);
	if (p->b >= 0)
		close(p->b);
	p->a = p->b = -1;
}

/* Copy what is readable from one side to the other; -1 when it ended. */
static int relay(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof buf);
	if (n <= 0)
		return -1;
	for (ssize_t off = 0; off < n;) {
		ssize_t k = write(to, buf + off, (size_t)(n - off));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		off += k;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *portfile = NULL;
	int port = 0, opt;
	while ((opt = getopt(argc, argv, "H:P:o:")) != -1) {
		switch (opt) {
		case 'H': host = optarg; break;
		case 'P': port = atoi(optarg); break;
		case 'o': portfile = optarg; break;
		default:
			fprintf(stderr, "usage: dt-proxy -P TARGET_PORT [-H HOST] -o PORTFILE\n");
			return 2;
		}
	}
	if (port <= 0 || !portfile) {
		fprintf(stderr, "usage: dt-proxy -P TARGET_PORT [-H HOST] -o PORTFILE\n");
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char err[256];
	int lfd[DT_NET_MAX_LISTEN], nl = 0, bound = 0;
	if (dt_net_listen("127.0.0.1", 0, 16, lfd, &nl, &bound, err, sizeof err) < 0) {
		fprintf(stderr, "dt-proxy: %s\n", err);
		return 1;
	}
	char tmp[1024];
	snprintf(tmp, sizeof tmp, "%s.tmp", portfile);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", bound) < 0 || fclose(f) != 0 || rename(tmp, portfile) != 0) {
		fprintf(stderr, "dt-proxy: cannot write %s\n", portfile);
		return 1;
	}

	struct pair pairs[MAX_PAIRS];
	for (int i = 0; i < MAX_PAIRS; i++)
		pairs[i].a = pairs[i].b = -1;
	int cut = 0;
	while (!want_exit) {
		if (want_cut) {
			want_cut = 0;
			cut = 1;
			for (int i = 0; i < MAX_PAIRS; i++)
				close_pair(&pairs[i]);
			fprintf(stderr, "dt-proxy: cut\n");
		}
		if (want_mend) {
			want_mend = 0;
			cut = 0;
			fprintf(stderr, "dt-proxy: mended\n");
		}
		struct pollfd pf[1 + 2 * MAX_PAIRS];
		int np = 0;
		pf[np++] = (struct pollfd){ .fd = lfd[0], .events = POLLIN };
		for (int i = 0; i < MAX_PAIRS; i++) {
			pf[np++] = (struct pollfd){ .fd = pairs[i].a, .events = POLLIN };
			pf[np++] = (struct pollfd){ .fd = pairs[i].b, .events = POLLIN };
		}
		if (poll(pf, (nfds_t)np, 200) <= 0)
			continue;
		if (pf[0].revents & POLLIN) {
			int a = accept(lfd[0], NULL, NULL);
			if (a >= 0) {
				int b = -1, slot = -1;
				for (int i = 0; i < MAX_PAIRS && slot < 0; i++)
					if (pairs[i].a < 0)
						slot = i;
				if (!cut && slot >= 0 &&
				    dt_net_connect(host, port, 2000, &b, err, sizeof err) == 0) {
					pairs[slot].a = a;
					pairs[slot].b = b;
				} else {
					close(a);
				}
			}
		}
		for (int i = 0; i < MAX_PAIRS; i++) {
			struct pollfd *pa = &pf[1 + 2 * i], *pb = &pf[2 + 2 * i];
			if (pairs[i].a < 0)
				continue;
			if ((pa->revents & (POLLIN | POLLHUP | POLLERR)) &&
			    relay(pairs[i].a, pairs[i].b) < 0) {
				close_pair(&pairs[i]);
				continue;
			}
			if ((pb->revents & (POLLIN | POLLHUP | POLLERR)) &&
			    relay(pairs[i].b, pairs[i].a) < 0)
				close_pair(&pairs[i]);
		}
	}
	for (int i = 0; i < MAX_PAIRS; i++)
		close_pair(&pairs[i]);
	for (int i = 0; i < nl; i++)
		close(lfd[i]);
	return 0;
}
