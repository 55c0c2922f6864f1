// Must compile: the control for the two probes beside it. pix_kafka's public header, in a target
// that links pix_kafka, builds; so the other probes fail for the boundary and not for a typo.
#include "pix/kafka/producer.hpp"

int main() {
  return 0;
}
