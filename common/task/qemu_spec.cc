#include "common/task/qemu_spec.h"

namespace assay {

QemuStep QemuStepFromProto(const assay::v1::QemuSpec& spec) {
  QemuStep q;
  q.system = spec.system();
  q.machine = spec.machine();
  q.cpu = spec.cpu();
  q.kernel = spec.kernel();
  q.args.assign(spec.args().begin(), spec.args().end());
  q.semihosting = spec.semihosting();
  q.expect.assign(spec.expect().begin(), spec.expect().end());
  q.ordered = spec.ordered();
  q.fail_on.assign(spec.fail_on().begin(), spec.fail_on().end());
  q.exit_code = spec.exit_code();
  return q;
}

}  // namespace assay
