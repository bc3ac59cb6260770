int ggml_answer(void) { return 42; }
const char * ggml_commit(void) { return GGML_COMMIT; }
