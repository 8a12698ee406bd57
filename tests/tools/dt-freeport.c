/*
 * dt-freeport - print free TCP ports on 127.0.0.1, one a line.
 *
 *   dt-freeport [COUNT]
 *
 * For the shell tests, to start programs that cannot report an ephemeral
 * port of their own (redis-server).  It binds COUNT (default 1) sockets to
 * 127.0.0.1 port 0 at once, so the ports printed are distinct, prints what
 * the kernel chose, and closes them.  The sockets never listen or connect,
 * so the ports are free again at once (no TIME_WAIT); another process may
 * still take one before the caller does, so callers retry on "address in
 * use" (tests/common.sh start_redis does).
 *
 * Exit status: 0, or 1 with a message on stderr.  Test tool: not installed.
 */
#include "build-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PORTS 64

int main(int argc, char **argv)
{
	int fds[MAX_PORTS];
	unsigned ports[MAX_PORTS];
	int count = 1, n = 0, rc = 1;

	if (argc > 2) {
		fprintf(stderr, "usage: dt-freeport [COUNT]\n");
		return 1;
	}
	if (argc == 2) {
		char *end;
		long v = strtol(argv[1], &end, 10);
		if (*argv[1] == '\0' || *end != '\0' || v < 1 || v > MAX_PORTS) {
			fprintf(stderr, "dt-freeport: COUNT must be 1 to %d\n", MAX_PORTS);
			return 1;
		}
		count = (int)v;
	}

	for (n = 0; n < count; n++) {
		struct sockaddr_in sa;
		socklen_t len = sizeof(sa);

		fds[n] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[n] < 0) {
			fprintf(stderr, "dt-freeport: socket: %s\n", strerror(errno));
			goto out;
		}
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = 0;
		if (bind(fds[n], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    getsockname(fds[n], (struct sockaddr *)&sa, &len) < 0) {
			fprintf(stderr, "dt-freeport: bind 127.0.0.1:0: %s\n", strerror(errno));
			close(fds[n]);
			goto out;
		}
		ports[n] = ntohs(sa.sin_port);
	}
	for (int i = 0; i < count; i++)
		printf("%u\n", ports[i]);
	rc = 0;
out:
	while (n-- > 0)
		close(fds[n]);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "dt-freeport: cannot write to stdout\n");
		rc = 1;
	}
	return rc;
}
