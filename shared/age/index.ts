// Built-in age encryption (age-encryption.org/v1, X25519 recipients), streaming in bounded
// memory with node:crypto. This file only re-exports; each module says what it enforces.
//
// Why our own module rather than the npm package `age-encryption` (0.3.1, the reference
// TypeScript implementation, by age's author): on this project's 2-core machine its pure-JS
// ChaCha20-Poly1305 ran at 30-60 MB/s, where node:crypto (OpenSSL) does 2.1-2.5 GB/s in
// 64 KiB chunks (bench/age-bench.ts). The large bench backup (2.7 s, a 357 MiB archive)
// would take 6-12 s more with the package; this module costs it ~0.25 s of CPU (measured:
// +3 % wall time, median of 7 pairs on a loaded machine). The package also streams
// only web ReadableStreams, bundles to 150 KB minified (this module: 20 KB) and brings five
// @noble/@scure dependencies. The format is small and fully specified (c2sp.org/age); the
// C2SP test vectors (npm `cctv-age`) and the `age` CLI check this implementation both ways.

export { createAgeDecryptStream, decryptAge, AgeDecryptor, describeRecipientTypes, type AgeDecryptOptions } from './decrypt.js';
export { createAgeEncryptStream, encryptAge, AgeEncryptor, type SuspendedAgeFile } from './encrypt.js';
export {
  AgeBadIdentityError,
  AgeBadRecipientError,
  AgeDamagedError,
  AgeHeaderLimitError,
  AgeNoIdentityMatchedError,
  AgeNotEncryptedError,
  AgeUnsupportedError,
  type AgeDamagedPart,
} from '../errors.js';
export { DEFAULT_HEADER_LIMITS, type HeaderLimits } from './header.js';
export {
  formatIdentity,
  generateIdentity,
  loadIdentityFile,
  loadRecipientsFile,
  parseIdentity,
  parseIdentityFile,
  parseRecipient,
  parseRecipientsFile,
  type AgeIdentity,
  type AgeRecipient,
} from './keys.js';
export { AGE_MAGIC_BYTES, isAgeFile, summarizeAgeHeader, type AgeHeaderSummary } from './probe.js';
