// AVX-512 VNNI INT8 micro-kernels: 8 rows x 32 columns (16 zmm accumulators), one vpdpbusd
// (u8 x s8, 4 k into each int32, wrapping, never saturating) per row and vector of columns;
// A's 4 bytes broadcast per row. Compiled with -mavx512vnni (CMakeLists.txt: *_avx512vnni.cc).
#include "kernels/qgemm_x86.h"

namespace brink::kernels::qgemm_detail {
namespace {

struct ZmmVnni : Zmm {
  using A = I;
  using B = I;
  static A prep_a(uint32_t v) { return _mm512_set1_epi32(static_cast<int>(v)); }
  static B prep_b(I w) { return w; }
  static I dot(I acc, A a, B b) { return _mm512_dpbusd_epi32(acc, a, b); }
};

}  // namespace

const QUkernel* qukernel_avx512vnni() {
  static const QUkernel uk = [] {
    QUkernel k;
    fill_x86<ZmmVnni, ZmmVnni, 8, 2>(&k);
    return k;
  }();
  return &uk;
}

}  // namespace brink::kernels::qgemm_detail
