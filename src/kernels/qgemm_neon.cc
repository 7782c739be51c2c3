// NEON INT8 micro-kernels (placeholder: the portable kernels until the NEON ones land).
#include "kernels/qgemm_ukernel.h"

namespace brink::kernels::qgemm_detail {

const QUkernel* qukernel_neon() {
  return qukernel_portable();
}
const QUkernel* qukernel_neondot() {
  return qukernel_portable();
}

}  // namespace brink::kernels::qgemm_detail
