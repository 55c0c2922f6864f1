// Must NOT compile: pix_domain does not depend on pix_kafka, so the kafka headers are not on its
// include path. ctest builds this as the test "boundaries.undeclared_dependency" and expects the
// build to fail (tests/CMakeLists.txt); if it ever compiles, the boundaries are not enforced.
#include "pix/kafka/producer.hpp"

int main() {
  return 0;
}
