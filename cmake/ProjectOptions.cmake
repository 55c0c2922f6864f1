# Warnings and sanitizers as interface targets: linked by our own targets only,
# so third-party code is never built with -Werror.
add_library(pix_warnings INTERFACE)
target_compile_options(pix_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Woverloaded-virtual -Werror)

add_library(pix_sanitizers INTERFACE)
if(PIX_SANITIZE)
  target_compile_options(pix_sanitizers INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(pix_sanitizers INTERFACE -fsanitize=address,undefined)
endif()
