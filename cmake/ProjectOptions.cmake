# Warnings and sanitizers as interface targets: linked by our own targets only,
# so third-party code is never built with -Werror.
add_library(pix_warnings INTERFACE)
target_compile_options(pix_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Woverloaded-virtual -Werror)

add_library(pix_sanitizers INTERFACE)
string(TOLOWER "${PIX_SANITIZE}" pix_sanitize)
if(pix_sanitize STREQUAL "thread")
  # -Wno-tsan: g++ warns that TSan does not model std::atomic_thread_fence, which Boost's headers
  # use (Asio, smart_ptr); our code uses none.
  target_compile_options(pix_sanitizers INTERFACE -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
  target_link_options(pix_sanitizers INTERFACE -fsanitize=thread)
elseif(pix_sanitize MATCHES "^(on|address|true|1)$")
  target_compile_options(pix_sanitizers INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(pix_sanitizers INTERFACE -fsanitize=address,undefined)
elseif(NOT pix_sanitize MATCHES "^(off|false|0|)$")
  message(FATAL_ERROR "PIX_SANITIZE=${PIX_SANITIZE}: use ON/address, thread or OFF")
endif()
