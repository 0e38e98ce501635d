/* CRC-32C (Castagnoli), the checksum of every snapshot file. Software
 * table-driven, so it needs no CPU feature flags; incremental: start with
 * crc = 0 and feed the previous result back in. */
#ifndef AISLE_EMBED_CRC32C_H
#define AISLE_EMBED_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t embed_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
