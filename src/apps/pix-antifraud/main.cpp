// pix-antifraud: one stage of the payment saga; everything it does lives in libpix (saga/).
#include "pix/saga/stage_app.hpp"

int main(int argc, char** argv) {
  return pix::saga::run_stage_app(pix::saga::StageKind::kAntifraud, argc, argv);
}
