// Must NOT compile: amqp/connection.hpp is INTERNAL to pix_amqp (src/CMakeLists.txt), so even a
// target that links pix_amqp cannot include it. ctest builds this as the test
// "boundaries.internal_header" and expects the build to fail.
#include "pix/amqp/connection.hpp"

int main() {
  return 0;
}
