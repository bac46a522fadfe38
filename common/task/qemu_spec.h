// A qemu step between its pipeline form (QemuStep) and its task form (assay.v1.QemuSpec), for
// both sides: the coordinator builds the emulator's command line from it, the worker its harness.
#pragma once

#include "assay/v1/job.pb.h"
#include "common/pipeline/pipeline.h"

namespace assay {

// The pipeline's qemu step from its TaskSpec form.
QemuStep QemuStepFromProto(const assay::v1::QemuSpec& spec);

}  // namespace assay
