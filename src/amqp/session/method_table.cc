// The declarative table of channel methods (style.md, practice 7): one line per method the
// client may send on a channel. Whether a method is synchronous or carries content comes from
// the generated MethodInfo; connection-class methods are handled by Connection.
#include "amqp/session/session.h"

namespace warren::amqp {

namespace {

using Handler = std::optional<Close> (*)(Channel&, const Method&);

template <typename M>
std::optional<Close> Call(Channel& ch, const Method& m) {
  return ch.Handle(std::get<M>(m));
}

struct Entry {
  uint16_t class_id;
  uint16_t method_id;
  Handler handler;
};

#define WARREN_METHOD(M) \
  Entry { M::kClassId, M::kMethodId, &Call<M> }

constexpr Entry kChannelMethods[] = {
    WARREN_METHOD(ChannelFlow),  WARREN_METHOD(ExchangeDeclare),   WARREN_METHOD(ExchangeDelete),
    WARREN_METHOD(ExchangeBind), WARREN_METHOD(ExchangeUnbind),    WARREN_METHOD(QueueDeclare),
    WARREN_METHOD(QueueBind),    WARREN_METHOD(QueueUnbind),       WARREN_METHOD(QueuePurge),
    WARREN_METHOD(QueueDelete),  WARREN_METHOD(BasicQos),          WARREN_METHOD(BasicConsume),
    WARREN_METHOD(BasicCancel),  WARREN_METHOD(BasicPublish),      WARREN_METHOD(BasicGet),
    WARREN_METHOD(BasicAck),     WARREN_METHOD(BasicReject),       WARREN_METHOD(BasicNack),
    WARREN_METHOD(BasicRecover), WARREN_METHOD(BasicRecoverAsync), WARREN_METHOD(ConfirmSelect),
    WARREN_METHOD(TxSelect),     WARREN_METHOD(TxCommit),          WARREN_METHOD(TxRollback),
};

}  // namespace

std::optional<Close> DispatchChannelMethod(Channel& ch, const Method& m) {
  const auto [class_id, method_id] = std::visit(
      [](const auto& x) {
        return std::pair{x.kClassId, x.kMethodId};
      },
      m);
  for (const Entry& e : kChannelMethods) {
    if (e.class_id == class_id && e.method_id == method_id) return e.handler(ch, m);
  }
  const MethodInfo* info = FindMethodInfo(class_id, method_id);
  return MakeClose(kCommandInvalid,
                   std::string("method '") + (info ? info->name : "?") +
                       "' is not valid on a channel sent by a client",
                   class_id, method_id);
}

}  // namespace warren::amqp
