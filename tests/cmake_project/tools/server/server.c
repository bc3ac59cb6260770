#include <stdio.h>
#ifdef FAKE_FAIL
#error "FAKE_FAIL: this compile error is on purpose"
#endif
int ggml_answer(void);
int main(void) {
    printf("version: %d (%s) answer %d\n", LLAMA_BUILD_NUMBER, LLAMA_BUILD_COMMIT, ggml_answer());
    return 0;
}
