/* Tests for `aisle exp` against a real redis-server: set, list, assign
 * (text and JSON), toggles, the holdout, delete, and refusals (exit 1 with
 * the reason, nothing stored) and bad usage (exit 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/app/expctl.h"
#include "services/devtools/redisproc.h"
#include "tests/test.h"

static redisproc rp;
static char out_path[] = "/tmp/aisle-expctl-XXXXXX", out[1 << 16];

/* Runs `aisle exp` with the words of args (space-separated, at most 31),
 * --redis added; its stdout lands in out. Returns its status. */
static int run(const char *args) {
    char copy[2048], *argv[36];
    int argc = 0;
    argv[argc++] = "exp";
    argv[argc++] = "--redis";
    argv[argc++] = rp.addr;
    snprintf(copy, sizeof(copy), "%s", args);
    for (char *save, *w = strtok_r(copy, " ", &save); w && argc < 35;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc] = NULL;
    fflush(stdout);
    int saved = dup(1);
    FILE *f = fopen(out_path, "w");
    if (!f) return -1;
    dup2(fileno(f), 1);
    int rc = expctl_main(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(f);
    f = fopen(out_path, "r");
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = 0;
    fclose(f);
    return rc;
}

static void test_commands(void) {
    TEST_CHECK(run("list") == 0 && strstr(out, "version 0: 0 experiments"));
    TEST_CHECK(run("set name=mmr layer=rank share=20% variant=control variant=low "
                   "rank.mmr_lambda=0.3 allow=qa:low") == 0);
    TEST_CHECK(strstr(out, "stored: experiment set version 1") != NULL);
    TEST_CHECK(strstr(out, "mmr  layer rank, 20.00 % of users (buckets 0..1999), salt mmr"));
    TEST_CHECK(strstr(out, "variant low weight 1 rank.mmr_lambda=0.3") != NULL);
    TEST_CHECK(run("toggle rank.creator_cap 3") == 0 && strstr(out, "toggles: rank.creator_cap=3"));
    TEST_CHECK(run("assign qa") == 0);
    printf("%s", out);
    TEST_CHECK(strstr(out, "layer rank: mmr = low (allowlist)") != NULL);
    TEST_CHECK(strstr(out, "rank.mmr_lambda = 0.3") && strstr(out, "rank.creator_cap = 3"));
    TEST_CHECK(run("--json assign qa") == 0);
    TEST_CHECK(strstr(out, "{\"user_id\":\"qa\",\"version\":2,\"holdout\":false,\"variants\":"
                           "[{\"layer\":\"rank\",\"experiment\":\"mmr\",\"variant\":\"low\","
                           "\"forced\":true}],\"params\":{\"rank.mmr_lambda\":\"0.3\","
                           "\"rank.creator_cap\":\"3\"}}") != NULL);
    TEST_CHECK(run("--json list") == 0 && strstr(out, "\"share_pct\":20.00,\"offset_pct\":0.00"));
    TEST_CHECK(run("holdout h1 5%") == 0 && strstr(out, "holdout 5.00 % (salt h1)"));

    /* Refusals: exit 1, the reason on stderr (and in JSON), nothing stored. */
    TEST_CHECK(run("set name=big layer=rank share=90% variant=a") == 1);
    TEST_CHECK(run("--json set name=x layer=rank share=5% variant=a rank.nope=1") == 1);
    TEST_CHECK(
        strstr(out, "\"error\":\"experiment 'x' variant 'a': unknown parameter 'rank.nope'\""));
    TEST_CHECK(run("toggle shop.mode slow") == 1);
    TEST_CHECK(run("delete nothing") == 1);
    TEST_CHECK(run("list") == 0 && strstr(out, "version 3: 1 experiments"));

    TEST_CHECK(run("delete mmr") == 0 && strstr(out, "version 4: 0 experiments"));
    TEST_CHECK(run("toggle rank.creator_cap") == 0 && !strstr(out, "toggles"));
    TEST_CHECK(run("frobnicate") == 2);
    TEST_CHECK(run("delete") == 2);
    TEST_CHECK(run("params") == 0 && strstr(out, "sources.*.budget"));
}

int main(void) {
    char err[256];
    int fd = mkstemp(out_path);
    if (fd < 0 || redisproc_start(&rp, err, sizeof(err)) != 0) {
        fprintf(stderr, "setup: %s\n", err);
        return 1;
    }
    close(fd);
    TEST_RUN(test_commands);
    redisproc_stop(&rp);
    unlink(out_path);
    return test_summary();
}
