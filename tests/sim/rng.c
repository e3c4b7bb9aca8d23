/* rng.c: raft-sim's only source of randomness, a xoshiro256** PRNG seeded through splitmix64,
 * and the hashes (mix, FNV-1a) behind trace hashes and state machine digests. */
#include "sim.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sim_rng_seed(sim_rng_t *g, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        g->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(sim_rng_t *g)
{
    uint64_t *s = g->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim_rng_below(sim_rng_t *g, uint64_t n)
{
    return n <= 1 ? 0 : sim_rng_next(g) % n; /* the bias is irrelevant here */
}

uint64_t sim_rng_between(sim_rng_t *g, uint64_t lo, uint64_t hi)
{
    return hi <= lo ? lo : lo + sim_rng_below(g, hi - lo + 1);
}

bool sim_rng_ppm(sim_rng_t *g, uint32_t ppm)
{
    return ppm > 0 && sim_rng_below(g, 1000000) < ppm;
}

uint64_t sim_mix64(uint64_t x)
{
    return splitmix64(&x);
}

uint64_t sim_fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
