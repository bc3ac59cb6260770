/* As llama.cpp's vendor/nlohmann/json.hpp: a header found through `-I<dir>/..` whose __FILE__
   lands in the binary. ccache hands the compiler that dir normalized; the string follows. */
static const char where_from[] = __FILE__;
