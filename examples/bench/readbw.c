/*
 * readbw: streaming read bandwidth of this machine, for the decode ceiling
 * (tokens/s <= bandwidth / bytes of weights read per token).
 *
 *     cc -O3 -march=native -pthread readbw.c -o readbw
 *     ./readbw BYTES THREADS PASSES
 *
 * Allocates BYTES (64-byte aligned), has each of THREADS threads first-touch
 * and then, PASSES times, sum its contiguous slice with four 64-byte vector
 * accumulators (plain loads, no non-temporal hints, no huge-page advice).
 * Threads start each pass together at a barrier; a pass is timed from the
 * start barrier to the end barrier. Prints one JSON object:
 *     {"bytes": B, "threads": T, "gbps": [per-pass GB/s (1e9 bytes/s)], "checksum": x}
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef float v16 __attribute__((vector_size(64)));

struct slice {
    const v16 *p;
    size_t n; /* vectors */
    int passes;
    pthread_barrier_t *start, *end;
    float sum;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float sum_slice(const v16 *p, size_t n) {
    v16 a = {0}, b = {0}, c = {0}, d = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a += p[i];
        b += p[i + 1];
        c += p[i + 2];
        d += p[i + 3];
    }
    for (; i < n; i++) a += p[i];
    v16 s = a + b + c + d;
    float t = 0;
    for (int k = 0; k < 16; k++) t += s[k];
    return t;
}

static void *worker(void *arg) {
    struct slice *s = arg;
    /* First touch from this thread, so the pages are its own. */
    memset((void *)s->p, 1, s->n * sizeof(v16));
    for (int r = 0; r < s->passes; r++) {
        pthread_barrier_wait(s->start);
        s->sum += sum_slice(s->p, s->n);
        pthread_barrier_wait(s->end);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s BYTES THREADS PASSES\n", argv[0]);
        return 2;
    }
    size_t bytes = strtoull(argv[1], NULL, 10);
    int threads = atoi(argv[2]), passes = atoi(argv[3]);
    if (bytes < 64 * (size_t)threads || threads < 1 || passes < 1) {
        fprintf(stderr, "readbw: bad arguments\n");
        return 2;
    }
    size_t nvec = bytes / sizeof(v16);
    v16 *buf = aligned_alloc(64, nvec * sizeof(v16));
    if (!buf) {
        fprintf(stderr, "readbw: cannot allocate %zu bytes\n", bytes);
        return 1;
    }
    pthread_barrier_t start, end;
    pthread_barrier_init(&start, NULL, threads + 1);
    pthread_barrier_init(&end, NULL, threads + 1);
    struct slice *sl = calloc(threads, sizeof *sl);
    pthread_t *tid = calloc(threads, sizeof *tid);
    size_t per = nvec / threads;
    for (int t = 0; t < threads; t++) {
        sl[t] = (struct slice){buf + t * per, t == threads - 1 ? nvec - t * per : per, passes, &start, &end, 0};
        pthread_create(&tid[t], NULL, worker, &sl[t]);
    }
    printf("{\"bytes\": %zu, \"threads\": %d, \"gbps\": [", nvec * sizeof(v16), threads);
    for (int r = 0; r < passes; r++) {
        pthread_barrier_wait(&start);
        double t0 = now();
        pthread_barrier_wait(&end);
        double dt = now() - t0;
        printf("%s%.3f", r ? ", " : "", nvec * sizeof(v16) / dt / 1e9);
    }
    float sum = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sum += sl[t].sum;
    }
    printf("], \"checksum\": %g}\n", sum);
    free(buf);
    return 0;
}
