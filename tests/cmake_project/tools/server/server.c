#include <stdio.h>
#include <where/where.h>
#ifdef FAKE_FAIL
#error "FAKE_FAIL: this compile error is on purpose"
#endif
int ggml_answer(void);
const char * ggml_commit(void);
int main(void) {
    printf("version: %d (%s) answer %d\n", LLAMA_BUILD_NUMBER, LLAMA_BUILD_COMMIT, ggml_answer());
    printf("ggml commit: %s\n", ggml_commit());
    printf("where.h from %s\n", where_from);
    return 0;
}
