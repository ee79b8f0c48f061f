#pragma once
// Field-table wire codec (RabbitMQ's type letters; see field_table.h).

#include <span>

#include "amqp/codec/close.h"
#include "amqp/codec/field_table.h"
#include "base/buffer.h"

namespace warren::amqp {

// Decodes a table including its 4-byte length prefix; the input must hold exactly one table.
// Errors (truncation, unknown type letter, nesting deeper than 64): 502 SYNTAX_ERROR.
DecodeResult<FieldTable> DecodeFieldTable(std::span<const std::byte> data);

// Appends the table with its 4-byte length prefix. Keys longer than 255 bytes are truncated.
void EncodeFieldTable(const FieldTable& table, ByteBuffer& out);
void EncodeFieldValue(const FieldValue& value, ByteBuffer& out);

}  // namespace warren::amqp
