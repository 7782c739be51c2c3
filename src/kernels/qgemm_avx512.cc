// AVX-512BW INT8 micro-kernels (no VNNI): 8 rows x 32 columns (16 zmm accumulators),
// vpmaddubsw + vpmaddwd, or the exact int16 path for a B whose pairs could saturate
// (qgemm_x86.h has the kernel).
#include "kernels/qgemm_x86.h"

namespace brink::kernels::qgemm_detail {

const QUkernel* qukernel_avx512() {
  static const QUkernel uk = [] {
    QUkernel k;
    fill_x86<ZmmMaddubs, ZmmExact, 8, 2>(&k);
    return k;
  }();
  return &uk;
}

}  // namespace brink::kernels::qgemm_detail
