/* See util.h. */
#include "tests/embed/util.h"

#include "embed/crc32c.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *tu_mkdtemp(void) {
    static char path[PATH_MAX];
    const char *base = getenv("TEST_TMPDIR");
    snprintf(path, sizeof(path), "%s/embedXXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(path);
}

const char *tu_write(const char *dir, const char *name, const char *text) {
    static char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) return NULL;
    FILE *f = fopen(path, "w");
    if (!f) return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

void tu_rmtree(const char *dir) {
    char cmd[PATH_MAX + 16];
    if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) < (int)sizeof(cmd) && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

const char *tu_shared_dir(const char *runfile) {
    static char path[PATH_MAX];
    char real[PATH_MAX], probe[PATH_MAX + 16];
    struct stat st;
    if (!realpath(runfile, real)) {
        printf("SKIP: runfile %s not found\n", runfile);
        return NULL;
    }
    for (char *slash = strrchr(real, '/'); slash; slash = strrchr(real, '/')) {
        *slash = '\0';
        snprintf(probe, sizeof(probe), "%s/WORKSPACE", real);
        if (stat(probe, &st) == 0) {
            int n = snprintf(path, sizeof(path), "%s/../shared", real);
            if (n > 0 && n < (int)sizeof(path) && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                return path;
            printf("SKIP: %s is absent\n", path);
            return NULL;
        }
    }
    printf("SKIP: no workspace root above %s\n", runfile);
    return NULL;
}

/* Size and CRC-32C of the file at path: 0, or -1 when it cannot be read. */
static int tu_file_crc(const char *path, size_t *size, uint32_t *crc) {
    unsigned char buf[1 << 16];
    size_t n;
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    *size = 0;
    *crc = 0;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        *crc = embed_crc32c(*crc, buf, n);
        *size += n;
    }
    fclose(f);
    return 0;
}

int tu_reseal(const char *dir) {
    static const char *names[] = {"meta.txt", "items.bin", "P.f32", "Q.faiss",
                                  "neighbors.bin", "creators.bin", "bias.f32"};
    char man[8192], path[PATH_MAX];
    int len = snprintf(man, sizeof(man), "aisle-embed-snapshot 1\n");
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        size_t n;
        uint32_t crc;
        snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
        if (tu_file_crc(path, &n, &crc) != 0) continue;
        len += snprintf(man + len, sizeof(man) - (size_t)len, "file %s %zu %08x\n", names[k], n,
                        crc);
    }
    len += snprintf(man + len, sizeof(man) - (size_t)len, "manifest-crc %08x\n",
                    embed_crc32c(0, man, (size_t)len));
    return tu_write(dir, "MANIFEST", man) ? 0 : -1;
}
