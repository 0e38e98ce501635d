/* Tests for the Admin service's handlers against a real redis-server:
 * SetExperiment, ListExperiments, SetToggle, DeleteExperiment and
 * GetAssignment (from a running watcher) with their serialized messages;
 * invalid definitions, bad requests and unknown methods refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/base/clock.h"
#include "services/base/status.h"
#include "services/devtools/redisproc.h"
#include "services/experiment/admin.h"
#include "services/experiment/spec.h"
#include "tests/test.h"

static redisproc rp;
static char err[512];

/* Calls method with msg; returns the code, the response unpacked as an
 * ExperimentSet in *set when asked. */
static int call(exp_admin *a, const char *method, const ProtobufCMessage *msg,
                Aisle__V1__ExperimentSet **set, uint8_t **raw, size_t *rawlen) {
    size_t len = protobuf_c_message_get_packed_size(msg), n = 0;
    uint8_t *req = malloc(len ? len : 1), *resp = NULL;
    protobuf_c_message_pack(msg, req);
    int rc = exp_admin_call(a, method, req, len, &resp, &n, err, sizeof(err));
    free(req);
    if (rc == AISLE_OK && set) *set = aisle__v1__experiment_set__unpack(NULL, n, resp);
    if (rc == AISLE_OK && raw) *raw = resp, *rawlen = n;
    else free(resp);
    return rc;
}

static void test_admin(void) {
    exp_watch *w;
    exp_admin *a;
    TEST_REQUIRE(exp_watch_start(rp.addr, 50, 0, &w, err, sizeof(err)) == AISLE_OK);
    TEST_REQUIRE(exp_admin_new(rp.addr, w, &a, err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(exp_admin_has("SetExperiment") && !exp_admin_has("Frobnicate"));

    Aisle__V1__SetExperimentRequest set;
    aisle__v1__set_experiment_request__init(&set);
    TEST_REQUIRE(exp_spec_parse_line("name=mmr layer=rank share=30% variant=control variant=low "
                                     "rank.mmr_lambda=0.3 allow=qa:low",
                                     &set.experiment, err, sizeof(err)) == AISLE_OK);
    Aisle__V1__ExperimentSet *s = NULL;
    TEST_CHECK(call(a, "SetExperiment", &set.base, &s, NULL, NULL) == AISLE_OK);
    TEST_CHECK(s && s->version == 1 && s->n_experiments == 1 &&
               strcmp(s->experiments[0]->salt, "mmr") == 0);
    aisle__v1__experiment_set__free_unpacked(s, NULL);
    aisle__v1__experiment__free_unpacked(set.experiment, NULL);

    /* Refused: over 100 %, and no experiment at all. */
    TEST_REQUIRE(exp_spec_parse_line("name=big layer=rank share=80% variant=a", &set.experiment,
                                     err, sizeof(err)) == AISLE_OK);
    TEST_CHECK(call(a, "SetExperiment", &set.base, NULL, NULL, NULL) == AISLE_EINVAL);
    TEST_CHECK(strstr(err, "over 100 %") != NULL);
    aisle__v1__experiment__free_unpacked(set.experiment, NULL);
    set.experiment = NULL;
    TEST_CHECK(call(a, "SetExperiment", &set.base, NULL, NULL, NULL) == AISLE_EINVAL);

    Aisle__V1__SetToggleRequest tog;
    aisle__v1__set_toggle_request__init(&tog);
    tog.param = "shop.mode";
    tog.value = "contemplating";
    TEST_CHECK(call(a, "SetToggle", &tog.base, &s, NULL, NULL) == AISLE_OK);
    TEST_CHECK(s && s->version == 2 && s->n_toggles == 1);
    aisle__v1__experiment_set__free_unpacked(s, NULL);
    tog.value = "sometimes";
    TEST_CHECK(call(a, "SetToggle", &tog.base, NULL, NULL, NULL) == AISLE_EINVAL);

    Aisle__V1__ListExperimentsRequest list;
    aisle__v1__list_experiments_request__init(&list);
    TEST_CHECK(call(a, "ListExperiments", &list.base, &s, NULL, NULL) == AISLE_OK);
    TEST_CHECK(s && s->version == 2 && s->n_experiments == 1);
    aisle__v1__experiment_set__free_unpacked(s, NULL);

    /* GetAssignment answers from the watcher once it runs version 2. */
    for (int i = 0; i < 100; i++) {
        exp_watch_stats st;
        exp_watch_get_stats(w, &st);
        if (st.version == 2) break;
        clock_sleep_ms(20);
    }
    Aisle__V1__GetAssignmentRequest ga;
    aisle__v1__get_assignment_request__init(&ga);
    ga.user_id = "qa";
    uint8_t *raw;
    size_t rawlen;
    TEST_REQUIRE(call(a, "GetAssignment", &ga.base, NULL, &raw, &rawlen) == AISLE_OK);
    Aisle__V1__Assignment *as = aisle__v1__assignment__unpack(NULL, rawlen, raw);
    free(raw);
    TEST_REQUIRE(as);
    TEST_CHECK(as->experiments_version == 2 && as->n_variants == 1 &&
               strcmp(as->variants[0]->variant, "low") == 0);
    TEST_CHECK(as->n_params == 2 && strcmp(as->params[0]->param, "rank.mmr_lambda") == 0 &&
               strcmp(as->params[1]->value, "contemplating") == 0);
    aisle__v1__assignment__free_unpacked(as, NULL);
    ga.user_id = "";
    TEST_CHECK(call(a, "GetAssignment", &ga.base, NULL, NULL, NULL) == AISLE_EINVAL);

    Aisle__V1__DeleteExperimentRequest del;
    aisle__v1__delete_experiment_request__init(&del);
    del.name = "nothing";
    TEST_CHECK(call(a, "DeleteExperiment", &del.base, NULL, NULL, NULL) == AISLE_ENOTFOUND);
    del.name = "mmr";
    TEST_CHECK(call(a, "DeleteExperiment", &del.base, &s, NULL, NULL) == AISLE_OK);
    TEST_CHECK(s && s->version == 3 && s->n_experiments == 0);
    aisle__v1__experiment_set__free_unpacked(s, NULL);

    uint8_t junk[] = {0xff, 0xff, 0xff}, *resp;
    size_t n;
    TEST_CHECK(exp_admin_call(a, "DeleteExperiment", junk, 3, &resp, &n, err, sizeof(err)) ==
               AISLE_EINVAL);
    TEST_CHECK(exp_admin_call(a, "Frobnicate", junk, 0, &resp, &n, err, sizeof(err)) ==
               AISLE_ENOTFOUND);
    exp_admin_free(a);
    exp_watch_stop(w);
}

int main(void) {
    if (redisproc_start(&rp, err, sizeof(err)) != 0) {
        fprintf(stderr, "cannot start redis-server: %s\n", err);
        return 1;
    }
    TEST_RUN(test_admin);
    redisproc_stop(&rp);
    return test_summary();
}
