#include "ops/op_groups.h"
#include "ops/op_util.h"

namespace brink::ops {

void register_loss_ops(OpRegistry& r) { (void)r; }

}  // namespace brink::ops
