#include "pix/broker/guarded_callback.hpp"

#include <spdlog/spdlog.h>

#include "pix/util/invariant.hpp"

namespace pix::broker::detail {

void report_callback_exception(const char* where, const char* what) noexcept {
  util::detail::count_violation();
  spdlog::critical("{}: a callback threw (stopped before it reached the C library): {}", where, what);
}

}  // namespace pix::broker::detail
