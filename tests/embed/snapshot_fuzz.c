/* Fuzz target: the snapshot loader on a directory built from the input.
 * The input is a sequence of records, u32 little-endian length then bytes,
 * one per file in the order meta.txt, items.bin, P.f32, Q.faiss,
 * neighbors.bin, creators.bin, bias.f32, MANIFEST; a file whose record is
 * missing or empty is absent. Without a MANIFEST record the directory is resealed
 * (a manifest with the right sizes and checksums, as a forger would write
 * it), so mutations reach every parser behind the checksums rather than
 * stopping at the first one. Anything must load or be refused with a
 * message, never read out of bounds. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed/snapshot.h"
#include "tests/embed/util.h"

static const char *const snapshot_fuzz_names[] = {
    "meta.txt", "items.bin", "P.f32", "Q.faiss", "neighbors.bin", "creators.bin", "bias.f32",
    "MANIFEST"};
#define SNAPSHOT_FUZZ_NFILES (sizeof(snapshot_fuzz_names) / sizeof(snapshot_fuzz_names[0]))

/* Writes n bytes as dir/name: 0, or -1. */
static int snapshot_fuzz_put(const char *dir, const char *name, const uint8_t *p, size_t n) {
    char path[PATH_MAX];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (!(f = fopen(path, "wb"))) return -1;
    if (n && fwrite(p, 1, n, f) != n) n = 0;
    return fclose(f) == 0 ? 0 : -1;
}

/* Lays the records out in dir; returns whether a MANIFEST record was
 * there, or -1. */
static int snapshot_fuzz_layout(const char *dir, const uint8_t *data, size_t size) {
    char path[PATH_MAX];
    int has_manifest = 0;
    for (size_t k = 0; k < SNAPSHOT_FUZZ_NFILES; k++) {
        snprintf(path, sizeof(path), "%s/%s", dir, snapshot_fuzz_names[k]);
        unlink(path);
    }
    for (size_t k = 0; k < SNAPSHOT_FUZZ_NFILES && size >= 4; k++) {
        uint32_t len = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                       (uint32_t)data[3] << 24;
        data += 4;
        size -= 4;
        if (len > size) len = (uint32_t)size;
        if (len && snapshot_fuzz_put(dir, snapshot_fuzz_names[k], data, len) != 0) return -1;
        has_manifest |= len && k == SNAPSHOT_FUZZ_NFILES - 1;
        data += len;
        size -= len;
    }
    return has_manifest;
}

static char snapshot_fuzz_dir[PATH_MAX];

static void snapshot_fuzz_cleanup(void) { tu_rmtree(snapshot_fuzz_dir); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *dir;
    embed_snapshot snap;
    char err[512];
    int has_manifest;
    if (!dir) {
        if (!(dir = tu_mkdtemp())) return 0;
        dir = strcpy(snapshot_fuzz_dir, dir);
        atexit(snapshot_fuzz_cleanup);
    }
    if ((has_manifest = snapshot_fuzz_layout(dir, data, size)) < 0) return 0;
    if (!has_manifest && tu_reseal(dir) != 0) return 0;
    if (embed_snapshot_load(dir, &snap, err, sizeof(err)) == 0) embed_snapshot_free(&snap);
    return 0;
}
