set(BUILD_NUMBER 0)
set(BUILD_COMMIT "unknown")
