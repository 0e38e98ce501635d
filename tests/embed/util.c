/* See util.h. */
#include "tests/embed/util.h"

#include <limits.h>
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
