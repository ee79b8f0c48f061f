#include "amqp/codec/close.h"

#include "amqp/codec/methods.h"

namespace warren::amqp {

bool Close::hard() const { return IsHardError(reply_code); }

Close MakeClose(uint16_t reply_code, std::string_view explanation, uint16_t class_id,
                uint16_t method_id) {
  Close c;
  c.reply_code = reply_code;
  c.reply_text = std::string(ReplyCodeName(reply_code));
  c.reply_text += " - ";
  c.reply_text += explanation;
  // RabbitMQ 3.10 keeps the first 252 bytes and marks the cut with "..." (checked with a
  // 'cannot decode <<...>>' text).
  if (c.reply_text.size() > 255) {
    c.reply_text.resize(252);
    c.reply_text += "...";
  }
  c.class_id = class_id;
  c.method_id = method_id;
  return c;
}

}  // namespace warren::amqp
