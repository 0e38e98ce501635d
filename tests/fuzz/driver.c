/* driver: runs a libFuzzer target over its corpus without libFuzzer.
 *
 * The fuzz targets build two ways. With clang's -fsanitize=fuzzer
 * (`bazel run.sh fuzz`) libFuzzer supplies main and mutates. In the
 * ordinary build this main feeds every file of the directories (or files)
 * named on the command line through LLVMFuzzerTestOneInput once: the seed
 * corpus and every crash ever found become a regression test that runs
 * plainly and under ASan+UBSan in CI. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file; returns 0, or 1 when it cannot be read. */
static int driver_file(const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long n;
    if (!f) return 1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        !(data = malloc((size_t)n + 1)) || fread(data, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(data);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, (size_t)n);
    free(data);
    return 0;
}

int main(int argc, char **argv) {
    int runs = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        DIR *d;
        struct dirent *e;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "driver: %s: no such file or directory\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad += driver_file(argv[i]);
            runs++;
            continue;
        }
        if (!(d = opendir(argv[i]))) return 1;
        while ((e = readdir(d))) {
            char path[4096];
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            bad += driver_file(path);
            runs++;
        }
        closedir(d);
    }
    printf("%d passed, %d failed\n", runs - bad, bad);
    return bad != 0 || runs == 0;
}
