/* Fuzz target: the model loaders (GGUF and llama2.c checkpoints, told
 * apart by their bytes) and, from the same bytes, the tokenizer loaders
 * (a GGUF vocabulary or a llama2.c tokenizer.bin). A file that does not
 * check out must be refused with a message, never read out of bounds. */
#include <stdint.h>

#include "model/model.h"
#include "model/tok.h"
#include "tests/fuzz/fuzzfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzzfile_write(data, size, ".bin");
    char err[256];
    model *m = NULL;
    tok_tokenizer *t = NULL;
    if (!path) return 0;
    if (model_load(path, &m, err, sizeof(err)) == 0) model_free(m);
    if (tok_load_path(path, &t, err, sizeof(err)) == 0) tok_free(t);
    if (tok_load_file(path, 512, &t, err, sizeof(err)) == 0) tok_free(t);
    return 0;
}
