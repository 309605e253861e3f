# Warnings are errors for our own code; third-party headers come in as SYSTEM.
add_library(assetmv_warnings INTERFACE)
target_compile_options(assetmv_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Werror
  -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough
  -Wformat=2 -Wmissing-declarations)
