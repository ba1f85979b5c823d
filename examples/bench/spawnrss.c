/*
 * spawnrss: run a command as the child of this small process and report the
 * child's own resource usage.
 *
 *     cc -O2 spawnrss.c -o spawnrss
 *     ./spawnrss FD COMMAND [ARGS...]
 *
 * Why: Linux's ru_maxrss of a process is the largest resident set of every
 * address space it had, including the one it was forked (or vforked) from
 * before its exec. A child that a large benchmark process starts directly
 * therefore reports at least that process's RSS. Forked from this helper,
 * whose own resident set is a few hundred KiB, the command's ru_maxrss is its
 * own peak.
 *
 * The command inherits stdin, stdout and stderr; when it has ended, one line
 *     MAXRSS_KIB UTIME_S STIME_S WAIT_STATUS
 * goes to file descriptor FD (closed in the command). Exit code: 0 when the
 * report was written (the command's own status is in it), 125 on errors of
 * this helper; 127 from the child when COMMAND cannot be executed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s FD COMMAND [ARGS...]\n", argv[0]);
        return 125;
    }
    int fd = atoi(argv[1]);
    pid_t pid = fork();
    if (pid < 0) {
        perror("spawnrss: fork");
        return 125;
    }
    if (pid == 0) {
        close(fd);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "spawnrss: cannot execute %s: ", argv[2]);
        perror(NULL);
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("spawnrss: wait4");
            return 125;
        }
    }
    dprintf(fd, "%ld %ld.%06ld %ld.%06ld %d\n", ru.ru_maxrss, (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
            (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, status);
    return 0;
}
