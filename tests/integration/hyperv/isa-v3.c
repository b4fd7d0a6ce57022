/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A static program built with -march=x86-64-v3 that executes one
 * instruction of each extension the level adds over baseline x86-64
 * (POPCNT and SSE4.2 from v2; AVX2, FMA, BMI2 from v3), on inputs the
 * compiler can't fold. On a CPU without them it dies of SIGILL (exit
 * 132 in a container); otherwise it prints "x86-64-v3 ok". Run inside
 * a hyperv container by test-hyperv-run.sh: images built for v2 and up
 * (RHEL 9's family) must run there.
 */
#include <immintrin.h>
#include <nmmintrin.h>
#include <stdint.h>
#include <stdio.h>

int main(void)
{
    volatile uint64_t x = 0xf0f0f0f0f0f0f0f0ull, mask = 0xffull;
    volatile float f = 1.5f;
    volatile uint32_t c = 7;
    __m256i a = _mm256_set1_epi32((int)c), b = _mm256_add_epi32(a, a);                   /* AVX2 */
    __m256 m = _mm256_fmadd_ps(_mm256_set1_ps(f), _mm256_set1_ps(f), _mm256_set1_ps(f)); /* FMA */
    float out[8];
    int32_t ints[8];

    _mm256_storeu_ps(out, m);
    _mm256_storeu_si256((__m256i *)ints, b);
    printf("popcnt %d crc32c %u pdep %llu avx2 %d fma %.2f\n", __builtin_popcountll(x),
           _mm_crc32_u32(0, c), (unsigned long long)_pdep_u64(x, mask), ints[0], out[0]);
    printf("x86-64-v3 ok\n");
    return 0;
}
