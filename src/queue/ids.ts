/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, a 12-bit counter, then 62 random bits. Ids sort by creation
 * time, and within one process strictly by creation order (RFC 9562 section 6.2, method 1): in the same
 * millisecond the counter counts up from a random start; when it runs out, the timestamp borrows the next
 * millisecond. A batch's ids therefore keep the batch's order.
 */
const pool = new Uint8Array(16 * 256)
let offset = pool.length

/** Two lowercase hex digits for every byte value: formatting an id is 16 lookups, not 16 conversions. */
const hex = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"))

let lastMs = -1
let counter = 0

export const uuidv7 = (now: number = Date.now()): string => {
  if (offset + 16 > pool.length) {
    crypto.getRandomValues(pool) // Web Crypto: a global on every runtime we run on, edge hosts included
    offset = 0
  }
  const b = pool.subarray(offset, offset + 16)
  offset += 16
  let ms = now
  if (ms > lastMs) {
    // a fresh millisecond: start the counter at a random point in its lower half, leaving room to count
    counter = ((b[6]! << 8) | b[7]!) & 0x7ff
  } else {
    // the same millisecond (or the clock stepped back): count on from the last id
    ms = lastMs
    counter++
    if (counter > 0xfff) {
      ms++
      counter = 0
    }
  }
  lastMs = ms
  b[0] = Math.floor(ms / 2 ** 40) & 0xff
  b[1] = Math.floor(ms / 2 ** 32) & 0xff
  b[2] = (ms >>> 24) & 0xff
  b[3] = (ms >>> 16) & 0xff
  b[4] = (ms >>> 8) & 0xff
  b[5] = ms & 0xff
  b[6] = 0x70 | (counter >>> 8)
  b[7] = counter & 0xff
  b[8] = (b[8]! & 0x3f) | 0x80
  let id = ""
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) id += "-"
    id += hex[b[i]!]!
  }
  return id
}
