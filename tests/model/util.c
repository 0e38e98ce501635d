/* util.c — see util.h. shared/ is found from the real location of a file
 * in this test's runfiles: the runfiles tree links back into the
 * workspace, and shared/ sits next to the workspace directory, wherever the
 * clone lives. AISLE_SHARED overrides the search. */
#include "tests/model/util.h"

#include "model/kern.h"
#include "model/quant.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_dir(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

/* shared/ beside the workspace into out (PATH_MAX bytes): AISLE_SHARED,
 * else through the runfiles link back to the workspace; 0 or -1. */
static int find_shared(char *out) {
    const char *env = getenv("AISLE_SHARED");
    const char *srcdir = getenv("TEST_SRCDIR");
    const char *ws = getenv("TEST_WORKSPACE");
    char anchor[PATH_MAX], real[PATH_MAX];
    char *cut;

    if (env && is_dir(env)) {
        snprintf(out, PATH_MAX, "%s", env);
        return 0;
    }
    snprintf(anchor, sizeof anchor, "%s/%s/tests/model/BUILD",
             srcdir ? srcdir : ".", ws ? ws : "aisle");
    if (!realpath(anchor, real) && !realpath("tests/model/BUILD", real))
        return -1;
    if (!(cut = strstr(real, "/tests/model/BUILD")))
        return -1;
    *cut = '\0';
    if (snprintf(out, PATH_MAX, "%s/../shared", real) >= PATH_MAX)
        return -1;
    return is_dir(out) ? 0 : -1;
}

/* Directory shared/SUB into dir, remembered in *state (0 unknown, 1 found,
 * -1 missing, after printing a skip notice). */
static const char *shared_sub(const char *sub, char *dir, int *state) {
    char shared[PATH_MAX];

    if (*state)
        return *state > 0 ? dir : NULL;
    *state = -1;
    if (!find_shared(shared) &&
        snprintf(dir, PATH_MAX, "%s/%s", shared, sub) < PATH_MAX &&
        is_dir(dir))
        *state = 1;
    else
        fprintf(stderr, "skip: shared/%s not found beside the workspace "
                "(set AISLE_SHARED)\n", sub);
    return *state > 0 ? dir : NULL;
}

const char *tu_stories_dir(void) {
    static char dir[PATH_MAX];
    static int state;
    return shared_sub("models/stories260K", dir, &state);
}

const char *tu_gguf_dir(void) {
    static char dir[PATH_MAX];
    static int state;
    return shared_sub("models/gguf", dir, &state);
}

const char *tu_stories(const char *name) {
    static char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", tu_stories_dir(), name) >= (int)sizeof path)
        path[0] = '\0'; /* too long: no such file */
    return path;
}

const char *tu_tmp(const char *name) {
    static char slots[8][PATH_MAX];
    static int next;
    static char dir[PATH_MAX];
    char *p = slots[next++ % 8];

    if (!dir[0]) {
        const char *base = getenv("TEST_TMPDIR");
        snprintf(dir, sizeof dir, "%s/aisle-model-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir))
            snprintf(dir, sizeof dir, "%s", base ? base : "/tmp");
    }
    if (snprintf(p, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
        p[0] = '\0'; /* an unusable path makes the caller's check fail */
    return p;
}

unsigned char *tu_read(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        goto done;
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    *size = (size_t)n;
done:
    fclose(f);
    return buf;
}

int tu_write(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f)
        return -1;
    ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int tu_copy_prefix(const char *src, const char *dst, size_t n) {
    size_t size;
    unsigned char *buf = tu_read(src, &size);
    int rc;
    if (!buf)
        return -1;
    rc = tu_write(dst, buf, n < size ? n : size);
    free(buf);
    return rc;
}

void *tu_random_blocks(int type, size_t n, float (*rand)(void)) {
    int elems, bytes, nh = 0, at[2];
    uint8_t *b;

    quant_block(type, &elems, &bytes);
    b = malloc(n / (size_t)elems * (size_t)bytes);
    switch (type) {
    case KERN_Q6_K: nh = 1; at[0] = 208; break;
    case KERN_Q4_0: case KERN_Q5_0: nh = 1; at[0] = 0; break;
    default: nh = 2; at[0] = 0; at[1] = 2; break; /* d and min/dmin */
    }
    for (size_t k = 0; k < n / (size_t)elems * (size_t)bytes; k++)
        b[k] = (uint8_t)(rand() * 128 + 128);
    for (size_t k = 0; k < n / (size_t)elems; k++)
        for (int i = 0; i < nh; i++) {
            uint16_t h = kern_f32_to_f16(0.01f + 0.02f * (rand() + 1));
            memcpy(b + k * (size_t)bytes + at[i], &h, 2);
        }
    return b;
}

int tu_argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}
