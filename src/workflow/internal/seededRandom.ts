/**
 * A deterministic number in [0, 1) from a string seed: the same seed gives the same number on
 * every machine and every run (FNV-1a to 64 bits of state, then SplitMix-style mixing to 53 bits).
 */
export const seededRandom = (seed: string): number => {
  let h1 = 0x811c9dc5
  let h2 = 0x01000193
  for (let i = 0; i < seed.length; i++) {
    const c = seed.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 0x01000193)
    h2 = Math.imul(h2 ^ c, 0x5bd1e995)
  }
  const mix = (x: number) => {
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
    return (x ^ (x >>> 16)) >>> 0
  }
  const high = mix(h1 ^ Math.imul(h2, 0x9e3779b1)) >>> 5 // 27 bits
  const low = mix(h2 ^ Math.imul(h1, 0x7feb352d)) >>> 6 // 26 bits
  return (high * 67108864 + low) / 9007199254740992
}
