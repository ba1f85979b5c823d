/* A fake model in C, linked with libditto_rt.a alone (+ -lm -lpthread -ldl)
 * the way dittoc links a real one: the three _mlir_ciface_ditto_* entry
 * points of contracts.md §3 and a main that calls ditto_rt_main.
 *
 * Rule (as tests/common/fake_model.rs): the cache holds token+1 at
 * [layer, pos, 0, 0]; the token after `token` at `pos` is
 * (token + token_at(pos-1) + 1) % vocab. Logits come from ditto_rt_sgemv
 * over the payload's weights, a [vocab, vocab] identity matrix, times the
 * one-hot vector of that token: real kernel calls on mapped weights. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct { uint8_t *allocated, *aligned; int64_t offset, sizes[1], strides[1]; } MemRefU8x1;
typedef struct { float *allocated, *aligned; int64_t offset, sizes[1], strides[1]; } MemRefF32x1;
typedef struct { float *allocated, *aligned; int64_t offset, sizes[2], strides[2]; } MemRefF32x2;
typedef struct { float *allocated, *aligned; int64_t offset, sizes[4], strides[4]; } MemRefF32x4;
typedef struct { int32_t *allocated, *aligned; int64_t offset, sizes[1], strides[1]; } MemRefI32x1;

void ditto_rt_sgemv(int64_t m, int64_t n, float alpha, int64_t a, int64_t rsa, int64_t csa,
                    int64_t x, int64_t incx, float beta, int64_t y, int64_t incy);
int ditto_rt_main(int argc, char **argv, void *decode_fn, void *prefill_fn, void *lm_head_fn,
                  const int64_t *model_shape);

static float *cell(MemRefF32x4 *c, int64_t pos) { return c->aligned + pos * c->strides[1]; }

static int64_t previous(MemRefF32x4 *k, int64_t pos) {
    if (pos == 0) return 0;
    float stored = *cell(k, pos - 1);
    if (stored == 0.0f) { fprintf(stderr, "fake model: position %ld not cached\n", (long)pos - 1); abort(); }
    return (int64_t)stored - 1;
}

static void store(MemRefF32x4 *k, MemRefF32x4 *v, int64_t pos, int64_t token) {
    if (pos >= k->sizes[1]) { fprintf(stderr, "fake model: position %ld past the cache\n", (long)pos); abort(); }
    *cell(k, pos) = (float)(token + 1);
    *cell(v, pos) = (float)(token + 1);
}

/* logits[vocab] = W[vocab, vocab] * onehot(next) */
static void logits_of(MemRefU8x1 *w, int64_t next, float *logits, int64_t vocab) {
    if (w->sizes[0] != vocab * vocab * 4) { fprintf(stderr, "fake model: weights have %ld bytes\n", (long)w->sizes[0]); abort(); }
    float *onehot = calloc(vocab, sizeof(float));
    onehot[next] = 1.0f;
    ditto_rt_sgemv(vocab, vocab, 1.0f, (int64_t)(w->aligned + w->offset), vocab, 1,
                   (int64_t)onehot, 1, 0.0f, (int64_t)logits, 1);
    free(onehot);
}

void _mlir_ciface_ditto_decode(MemRefU8x1 *w, MemRefF32x4 *k, MemRefF32x4 *v,
                               int64_t token, int64_t pos, MemRefF32x1 *logits) {
    int64_t vocab = logits->sizes[0];
    int64_t prev = previous(k, pos);
    store(k, v, pos, token);
    logits_of(w, (token + prev + 1) % vocab, logits->aligned + logits->offset, vocab);
}

void _mlir_ciface_ditto_prefill(MemRefU8x1 *w, MemRefF32x4 *k, MemRefF32x4 *v,
                                MemRefI32x1 *tokens, int64_t pos, MemRefF32x2 *hidden) {
    (void)w;
    for (int64_t t = 0; t < tokens->sizes[0]; t++) {
        int64_t token = tokens->aligned[tokens->offset + t];
        float *row = hidden->aligned + hidden->offset + t * hidden->strides[0];
        row[0] = (float)token;
        row[1] = (float)previous(k, pos + t);
        store(k, v, pos + t, token);
    }
}

void _mlir_ciface_ditto_lm_head(MemRefU8x1 *w, MemRefF32x2 *hidden, MemRefF32x2 *logits) {
    int64_t vocab = logits->sizes[1];
    for (int64_t r = 0; r < hidden->sizes[0]; r++) {
        float *row = hidden->aligned + hidden->offset + r * hidden->strides[0];
        int64_t next = ((int64_t)row[0] + (int64_t)row[1] + 1) % vocab;
        logits_of(w, next, logits->aligned + logits->offset + r * logits->strides[0], vocab);
    }
}

/* The shape this "code" is compiled for (n_layers, d_model, n_heads,
 * n_kv_heads, head_dim, vocab, max_ctx): the link test's payload. */
static const int64_t model_shape[7] = {2, 4, 1, 1, 2, 32, 128};

int main(int argc, char **argv) {
    return ditto_rt_main(argc, argv, (void *)_mlir_ciface_ditto_decode,
                         (void *)_mlir_ciface_ditto_prefill, (void *)_mlir_ciface_ditto_lm_head,
                         model_shape);
}
