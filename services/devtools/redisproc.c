/* redisproc: spawn, wait for, and stop a redis-server child. */
#include "services/devtools/redisproc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "services/base/clock.h"

/* Asks the kernel for a free loopback port. Another process could take it
 * before redis binds; the start then fails with a clear error. */
static int redisproc_free_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0) return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int redisproc_ping(int port) {
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return ok;
}

int redisproc_start(redisproc *rp, char *err, size_t errlen) {
    char port[16];
    int status;
    memset(rp, 0, sizeof(*rp));
    rp->port = redisproc_free_port();
    if (rp->port <= 0) {
        snprintf(err, errlen, "no free loopback port for redis-server");
        return -1;
    }
    snprintf(port, sizeof(port), "%d", rp->port);
    snprintf(rp->addr, sizeof(rp->addr), "127.0.0.1:%d", rp->port);
    rp->pid = fork();
    if (rp->pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (rp->pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        setpgid(0, 0);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        /* AISLE_REDIS_MODULE names aisle_redis.so to load (the profile
         * write without Lua; tests run with and without it). */
        const char *module = getenv("AISLE_REDIS_MODULE");
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--loglevel", "warning",
               module && *module ? "--loadmodule" : (char *)NULL, module, (char *)NULL);
        fprintf(stderr, "cannot run redis-server: %s\n", strerror(errno));
        _exit(127);
    }
    for (int64_t until = clock_mono_ms() + 10000; clock_mono_ms() < until;) {
        if (redisproc_ping(rp->port)) return 0;
        if (waitpid(rp->pid, &status, WNOHANG) == rp->pid) {
            snprintf(err, errlen,
                     "redis-server exited at start (is it installed? run deploy/setup.sh)");
            rp->pid = 0;
            return -1;
        }
        clock_sleep_ms(50);
    }
    snprintf(err, errlen, "redis-server did not answer on %s", rp->addr);
    redisproc_stop(rp);
    return -1;
}

void redisproc_stop(redisproc *rp) {
    if (rp->pid <= 0) return;
    kill(rp->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(rp->pid, NULL, WNOHANG) == rp->pid) {
            rp->pid = 0;
            return;
        }
        clock_sleep_ms(50);
    }
    kill(rp->pid, SIGKILL);
    waitpid(rp->pid, NULL, 0);
    rp->pid = 0;
}
