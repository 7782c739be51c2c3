// AVX2 INT8 micro-kernels: 4 rows x 16 columns (8 ymm accumulators), vpmaddubsw + vpmaddwd,
// or the exact int16 path for a B whose pairs could saturate (qgemm_x86.h has the kernel).
#include "kernels/qgemm_x86.h"

namespace brink::kernels::qgemm_detail {

const QUkernel* qukernel_avx2() {
  static const QUkernel uk = [] {
    QUkernel k;
    fill_x86<YmmMaddubs, YmmExact, 4, 2>(&k);
    return k;
  }();
  return &uk;
}

}  // namespace brink::kernels::qgemm_detail
