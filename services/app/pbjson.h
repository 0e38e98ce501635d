/* pbjson: protobuf-c messages as JSON, for `aisle ctl --json` and the
 * admin console's endpoints.
 *
 * Field names are the proto's own (snake_case, as protoc's
 * preserving_proto_field_name); enums by name; 64-bit integers as JSON
 * numbers, which scripts (jq) read directly; every field is written, set
 * or not, so a reader need not know proto3's defaults. */
#ifndef AISLE_PBJSON_H
#define AISLE_PBJSON_H

#include <protobuf-c/protobuf-c.h>

#include "services/base/buf.h"

void pbjson_message(buf *out, const ProtobufCMessage *m);
/* s as a JSON string, quotes included. */
void pbjson_string(buf *out, const char *s);

#endif
